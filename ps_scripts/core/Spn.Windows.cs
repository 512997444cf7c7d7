// Spn.Windows.cs: the only Get-IisSpn code that needs Windows: starting setspn.exe. Compiled everywhere,
// run only on a host (under Mono a double implements ISpnLister).
namespace IisFleet.Target
{
    using System;
    using System.Globalization;
    using System.Text;

    public sealed class SetspnLister : ISpnLister
    {
        /// <summary>setspn waits on a domain controller; past this the listing is abandoned (and the process killed).</summary>
        public const int TimeoutMs = 60000;

        public SpnListing List(string account)
        {
            // One argument, quoted for the Windows command-line parser: account names may hold spaces.
            // setspn writes in the OEM code page (localized headers and names, e.g. "für" in German): decode
            // with it, not with whatever the session's console encoding was set to.
            Encoding oem = Encoding.GetEncoding(CultureInfo.CurrentCulture.TextInfo.OEMCodePage);
            ToolResult result = ToolProcess.Run("setspn.exe", "-L \"" + account.Replace("\"", "") + "\"", oem, TimeoutMs,
                                                "setspn -L " + account);
            string text = (result.Output + result.Error).Replace("\r\n", "\n").TrimEnd('\n');
            return new SpnListing(result.ExitCode, text);
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
