// RawArtefacts.Windows.cs: the only Get-IisRawArtefact code that needs Windows: exporting event logs (the
// Windows Event Log API's export, what `wevtutil epl` calls), the secedit export, a file's owner. Compiled
// everywhere, run only on a host (under Mono the lab's double in toolkit/lab/targethost implements
// IArtefactSource). No field or signature here names an EventLog* type: Mono cannot load such a class, and the
// lab harness enumerates every type of the assembly.
namespace IisFleet.Target
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using System.IO;
    using System.Security.AccessControl;
    using System.Security.Principal;

    public sealed class WindowsArtefactSource : IArtefactSource
    {
        /// <summary>secedit reads the local policy database; past this the export is abandoned (and the process killed).</summary>
        public const int SeceditTimeoutMs = 120000;

        public ArtefactTimes Times(string path)
        {
            FileInfo info = new FileInfo(path);
            return new ArtefactTimes(info.CreationTimeUtc, info.LastWriteTimeUtc, info.LastAccessTimeUtc);
        }

        public string Owner(string path)
        {
            // Only the owner section: READ_CONTROL, which a log HTTP.sys holds open does not refuse.
            FileSecurity security = File.GetAccessControl(path, AccessControlSections.Owner);
            IdentityReference sid = security.GetOwner(typeof(SecurityIdentifier));
            if (sid == null) return null;
            try
            {
                return sid.Translate(typeof(NTAccount)).Value;
            }
            catch (IdentityNotMappedException)
            {
                return sid.Value;  // a deleted account or a domain the host cannot reach: the SID itself
            }
            catch (SystemException)
            {
                return sid.Value;
            }
        }

        public string CreateExportFolder()
        {
            string folder = Path.Combine(Path.GetTempPath(), "iisfleet-raw-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(folder);
            return folder;
        }

        public void RemoveExportFolder(string folder)
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, true);
        }

        public void DeleteExport(string path)
        {
            if (File.Exists(path)) File.Delete(path);
        }

        public string ExportEventLog(string log, DateTime since, DateTime until, string target)
        {
            string query = EventLogQueryText(since, until);
            EventLogExport.Export(log, query, target);
            return "exported with EventLogSession.ExportLog (the Event Log API's EvtExportLog, as wevtutil epl) from the " + log +
                   " log, events without messages, query " + query;
        }

        /// <summary>XPath over System/TimeCreated/@SystemTime, both ends inclusive, milliseconds in UTC.</summary>
        public static string EventLogQueryText(DateTime since, DateTime until)
        {
            const string format = "yyyy-MM-dd'T'HH:mm:ss.fff'Z'";
            return "*[System[TimeCreated[@SystemTime>='" + since.ToUniversalTime().ToString(format, CultureInfo.InvariantCulture) +
                   "' and @SystemTime<='" + until.ToUniversalTime().ToString(format, CultureInfo.InvariantCulture) + "']]]";
        }

        public string ExportSecurityPolicy(string target, string logPath)
        {
            // Every area (user rights, security policy, groups, registry and file ACL templates). Paths are quoted for the
            // Windows command-line parser; they are this collector's own temp paths, never host or controller text.
            ToolResult result = ToolProcess.Run("secedit.exe", "/export /cfg \"" + target + "\" /log \"" + logPath + "\" /quiet",
                                                null, SeceditTimeoutMs, "secedit /export");
            if (!File.Exists(target))
            {
                // Typically not elevated: secedit needs an administrator to read the policy database.
                throw new UnauthorizedAccessException("secedit /export wrote no file (exit code " +
                    result.ExitCode.ToString(CultureInfo.InvariantCulture) + "): " + (result.Output + result.Error).Trim());
            }
            return "secedit /export /cfg (all areas), exit code " + result.ExitCode.ToString(CultureInfo.InvariantCulture) +
                   "; the UTF-16LE INF file as secedit wrote it";
        }
    }

    /// <summary>The Event Log API's export. A separate class whose only method body names the EventLog types, so
    /// nothing else that Mono loads refers to them.</summary>
    internal static class EventLogExport
    {
        public static void Export(string log, string query, string target)
        {
            // The target must not exist (EvtExportLog refuses to overwrite); it is a fresh name in our own folder.
            try
            {
                using (System.Diagnostics.Eventing.Reader.EventLogSession session = new System.Diagnostics.Eventing.Reader.EventLogSession())
                {
                    session.ExportLog(log, System.Diagnostics.Eventing.Reader.PathType.LogName, query, target);
                }
            }
            catch (System.Diagnostics.Eventing.Reader.EventLogNotFoundException error)
            {
                throw new FileNotFoundException("The " + log + " event log does not exist on this host: " + error.Message);
            }
            catch (System.Diagnostics.Eventing.Reader.EventLogException error)
            {
                // Not an IOException: give it the category the collector reports per file (access denied arrives
                // as UnauthorizedAccessException and passes through unchanged).
                throw new IOException("The " + log + " event log could not be exported: " + error.Message);
            }
        }
    }

    public static partial class WindowsCollectors
    {
        public static IEnumerable<string> RawArtefact(string since, string until, string[] kinds, string[] eventLogs,
                                                      int chunkBytes, long maxTotalBytes, string[] have, string httpErrDirectory)
        {
            return RawArtefactCollector.Collect(LocalHost.Instance, new WindowsArtefactSource(), since, until, kinds, eventLogs,
                                                chunkBytes, maxTotalBytes, have, httpErrDirectory);
        }
    }
}
