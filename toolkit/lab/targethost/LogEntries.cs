// LogEntries.cs (lab harness only): Get-IisW3CLog and Get-IisHttpErrLog answered by the core's entry points,
// with the parameters the controller bound (names and defaults as in the sidecars).
namespace IisFleet.Lab
{
    using System.Collections.Generic;
    using IisFleet.Target;

    public sealed class W3CLogEntry : ILabEntry
    {
        public string CollectorId { get { return "Get-IisW3CLog"; } }

        public IEnumerable<string> Run(IHostContext host, LabParameters p)
        {
            return LogCollectors.W3C(host, p.Strings("LogDirectory"), p.String("Since", ""), p.String("Until", ""),
                                     p.Int("HandshakeWindowSeconds", 30), p.Int("MaxLinesPerFile", 200000),
                                     p.Int("MaxFiles", 200), p.Number("MaxBytes", 50000000));
        }
    }

    public sealed class HttpErrLogEntry : ILabEntry
    {
        public string CollectorId { get { return "Get-IisHttpErrLog"; } }

        public IEnumerable<string> Run(IHostContext host, LabParameters p)
        {
            string[] directories = p.Strings("LogDirectory");
            return LogCollectors.HttpErr(host, directories.Length > 0 ? directories[0] : "", p.String("Since", ""),
                                         p.String("Until", ""), p.Int("MaxLinesPerFile", 50000), p.Int("MaxFiles", 50));
        }
    }
}
