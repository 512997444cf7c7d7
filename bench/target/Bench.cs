// Bench.cs (benchmark only): runs the core's Get-IisW3CLog entry point on a local folder with the real
// LocalHost (System.IO), the code path a Windows host runs, and prints the parts it returns.
namespace IisFleet.Bench
{
    using System;
    using System.Diagnostics;
    using IisFleet.Target;

    public static class Program
    {
        public static int Main(string[] args)
        {
            string folder = args[0], since = args[1], until = args[2];
            Stopwatch watch = Stopwatch.StartNew();
            long chars = 0;
            foreach (string part in LogCollectors.W3C(LocalHost.Instance, new[] { folder }, since, until, 30, 200000, 200, 50000000))
            {
                chars += part.Length;
                Console.Out.WriteLine(part);
            }
            // CPU time too: the benchmark machine is shared, so wall time depends on the neighbours.
            Process self = Process.GetCurrentProcess();
            double cpu = self.TotalProcessorTime.TotalSeconds;
            long peak = self.PeakWorkingSet64;
            System.Globalization.CultureInfo invariant = System.Globalization.CultureInfo.InvariantCulture;
            Console.Error.WriteLine("{\"seconds\":" + watch.Elapsed.TotalSeconds.ToString("R", invariant) + ",\"cpu_seconds\":" +
                                    cpu.ToString("R", invariant) + ",\"peak_bytes\":" + peak + ",\"chars\":" + chars + "}");
            return 0;
        }
    }
}
