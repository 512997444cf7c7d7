// ConfigEntry.cs (lab harness only): Get-IisConfig answered by the core's ConfigCollector, with the
// parameters the controller bound (defaults filled in from the sidecar by toolkit/lab/model/coreanswers.py).
namespace IisFleet.Lab
{
    using System.Collections.Generic;
    using IisFleet.Target;

    public sealed class ConfigEntry : ILabEntry
    {
        public string CollectorId { get { return ConfigCollector.Id; } }

        public IEnumerable<string> Run(IHostContext host, LabParameters parameters)
        {
            yield return ConfigCollector.Collect(host, parameters.Int("MaxWebConfigDepth", 0),
                                                 parameters.Int("MaxWebConfigCount", 0),
                                                 parameters.Number("MaxBytes", 0));
        }
    }
}
