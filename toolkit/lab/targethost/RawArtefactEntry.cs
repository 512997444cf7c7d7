// RawArtefactEntry.cs (lab harness only): Get-IisRawArtefact answered by the core's RawArtefactCollector, with a
// stand-in for the Windows-only IArtefactSource. Event log and secedit "exports" copy files the lab prepared
// from the simulated host's model (lab-only parameters __EventLogFiles "<log>\t<local file>" and __SeceditFile);
// owners come from the host model's descriptors (__Acls, as for Get-IisContentAcl). The export folder is a real
// temporary folder, mounted for the request at the path a host would use, and removed by the collector.
namespace IisFleet.Lab
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using IisFleet.Target;

    public sealed class RawArtefactEntry : ILabEntry
    {
        public string CollectorId { get { return RawArtefactCollector.Id; } }

        public IEnumerable<string> Run(IHostContext host, LabParameters p)
        {
            LabArtefactSource source = new LabArtefactSource((MappedFileSystem)host.Files, p.Strings("__EventLogFiles"),
                                                             p.String("__SeceditFile", ""),
                                                             new LabContentSecurity(host.Files, p.Strings("__Acls"), new string[0],
                                                                                    p.String("__DefaultSddl", "")));
            return RawArtefactCollector.Collect(host, source, p.String("Since", ""), p.String("Until", ""), p.Strings("Kinds"),
                                                p.Strings("EventLogs"), p.Int("ChunkBytes", RawArtefactCollector.DefaultChunkBytes),
                                                p.Number("MaxTotalBytes", 0), p.Strings("Have"), p.String("HttpErrDirectory", ""));
        }
    }

    public sealed class LabArtefactSource : IArtefactSource
    {
        /// <summary>Where a host's %TEMP% would be for the account iisfleet runs as.</summary>
        public const string TempFolder = "C:\\Windows\\Temp";

        private static readonly Dictionary<string, string> Aliases = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            { "BA", "BUILTIN\\Administrators" }, { "SY", "NT AUTHORITY\\SYSTEM" }, { "BU", "BUILTIN\\Users" },
            { "LS", "NT AUTHORITY\\LOCAL SERVICE" }, { "NS", "NT AUTHORITY\\NETWORK SERVICE" },
        };

        private readonly MappedFileSystem files;
        private readonly Dictionary<string, string> eventLogs = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        private readonly string seceditFile;
        private readonly LabContentSecurity security;

        public LabArtefactSource(MappedFileSystem files, string[] eventLogFiles, string seceditFile, LabContentSecurity security)
        {
            this.files = files;
            this.seceditFile = seceditFile;
            this.security = security;
            foreach (string line in eventLogFiles)
            {
                int tab = line.IndexOf('\t');
                if (tab > 0) eventLogs[line.Substring(0, tab)] = line.Substring(tab + 1);
            }
        }

        public ArtefactTimes Times(string path)
        {
            FileInfo info = new FileInfo(Local(path));
            if (!info.Exists) throw new FileNotFoundException("Could not find file '" + path + "'.", path);
            return new ArtefactTimes(info.CreationTimeUtc, info.LastWriteTimeUtc, info.LastAccessTimeUtc);
        }

        public string Owner(string path)
        {
            string sddl = security.ReadSddl(path);
            if (string.IsNullOrEmpty(sddl) || !sddl.StartsWith("O:", StringComparison.Ordinal)) return null;
            string rest = sddl.Substring(2);
            int end = rest.Length;
            foreach (string mark in new[] { "G:", "D:", "S:" })
            {
                int at = rest.IndexOf(mark, StringComparison.Ordinal);
                if (at >= 0 && at < end) end = at;
            }
            string owner = rest.Substring(0, end);
            string name;
            return Aliases.TryGetValue(owner, out name) ? name : owner;
        }

        public string CreateExportFolder()
        {
            string name = "iisfleet-raw-" + Guid.NewGuid().ToString("N");
            string local = Path.Combine(Path.GetTempPath(), name);
            Directory.CreateDirectory(local);
            string windows = TempFolder + "\\" + name;
            files.AddMount(windows, local);
            return windows;
        }

        public void RemoveExportFolder(string folder)
        {
            string local = Local(folder);
            if (Directory.Exists(local)) Directory.Delete(local, true);
        }

        public void DeleteExport(string path)
        {
            string local = Local(path);
            if (File.Exists(local)) File.Delete(local);
        }

        public string ExportEventLog(string log, DateTime since, DateTime until, string target)
        {
            string prepared;
            if (eventLogs.TryGetValue(log, out prepared) && prepared.Length == 0)
            {
                // The host model says this account may not read the log (e.g. Security without Event Log Readers).
                throw new UnauthorizedAccessException("Attempted to perform an unauthorized operation.");
            }
            if (prepared == null || !File.Exists(prepared))
            {
                throw new FileNotFoundException("The " + log + " event log does not exist on this host.");
            }
            File.Copy(prepared, NewTarget(target));
            return "lab: the " + log + " log's events of the window, prepared from the host model (a host exports it with " +
                   "EventLogSession.ExportLog, query " + WindowsArtefactSource.EventLogQueryText(since, until) + ")";
        }

        public string ExportSecurityPolicy(string target, string logPath)
        {
            if (string.IsNullOrEmpty(seceditFile) || !File.Exists(seceditFile))
            {
                throw new UnauthorizedAccessException("secedit /export wrote no file (exit code 1): Task is completed. See log for details.");
            }
            File.Copy(seceditFile, NewTarget(target));
            return "lab: the host model's secedit export (a host runs secedit /export /cfg, all areas)";
        }

        private string NewTarget(string target)
        {
            string local = Local(target);
            if (File.Exists(local)) throw new IOException("The export target exists already: " + target);
            return local;
        }

        private string Local(string path)
        {
            string local = files.Resolve(path);
            if (local == null) throw new DirectoryNotFoundException("Could not find a part of the path '" + path + "'.");
            return local;
        }
    }
}
