// FrebEntry.cs (lab harness only): Get-IisFailedRequestTrace answered by the core's FrebCollector.
namespace IisFleet.Lab
{
    using System.Collections.Generic;
    using IisFleet.Target;

    public sealed class FrebEntry : ILabEntry
    {
        public string CollectorId { get { return FrebCollector.Id; } }

        public IEnumerable<string> Run(IHostContext host, LabParameters parameters)
        {
            yield return FrebCollector.Collect(host, parameters.String("Since", ""), parameters.Int("StatusCode", 0),
                                               parameters.Int("MaxFiles", 0), parameters.Number("MaxBytes", 0));
        }
    }
}
