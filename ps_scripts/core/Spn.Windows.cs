// Spn.Windows.cs: the only Get-IisSpn code that needs Windows: starting setspn.exe. Compiled everywhere,
// run only on a host (under Mono a double implements ISpnLister).
namespace IisFleet.Target
{
    using System;
    using System.Diagnostics;
    using System.Globalization;
    using System.Text;

    public sealed class SetspnLister : ISpnLister
    {
        /// <summary>setspn waits on a domain controller; past this the listing is abandoned (and the process killed).</summary>
        public const int TimeoutMs = 60000;

        public SpnListing List(string account)
        {
            ProcessStartInfo start = new ProcessStartInfo("setspn.exe");
            // One argument, quoted for the Windows command-line parser: account names may hold spaces.
            start.Arguments = "-L \"" + account.Replace("\"", "") + "\"";
            start.UseShellExecute = false;
            start.CreateNoWindow = true;
            start.RedirectStandardOutput = true;
            start.RedirectStandardError = true;
            // setspn writes in the OEM code page (localized headers and names, e.g. "für" in German): decode
            // with it, not with whatever the session's console encoding was set to.
            Encoding oem = Encoding.GetEncoding(CultureInfo.CurrentCulture.TextInfo.OEMCodePage);
            start.StandardOutputEncoding = oem;
            start.StandardErrorEncoding = oem;
            using (Process process = Process.Start(start))
            {
                System.Threading.Tasks.Task<string> error = process.StandardError.ReadToEndAsync();
                string output = process.StandardOutput.ReadToEnd();
                if (!process.WaitForExit(TimeoutMs))
                {
                    try { process.Kill(); } catch (InvalidOperationException) { }
                    throw new TimeoutException("setspn -L " + account + " did not finish within " + TimeoutMs / 1000 + " s");
                }
                string text = (output + error.Result).Replace("\r\n", "\n").TrimEnd('\n');
                return new SpnListing(process.ExitCode, text);
            }
        }
    }

    public static partial class WindowsCollectors
    {
        public static string Spn()
        {
            return SpnCollector.Collect(LocalHost.Instance, new SetspnLister());
        }
    }
}
