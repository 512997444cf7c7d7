// LabHost.cs (lab harness only): a simulated host's files under Windows path names, its clock and name.
// This is the Mono stand-in for IisFleet.Target.LocalHost; the core cannot tell the difference.
namespace IisFleet.Lab
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using IisFleet.Target;

    /// <summary>Maps Windows paths onto local folders ("mounts"): "C:\" onto files/C, "\\" onto files/UNC,
    /// or one log folder onto a time-shifted copy. The longest matching prefix wins. Windows compares
    /// paths case-insensitively, so each path component is looked up that way.</summary>
    public sealed class MappedFileSystem : IFileSystem
    {
        private readonly List<KeyValuePair<string, string>> mounts = new List<KeyValuePair<string, string>>();

        public MappedFileSystem(IEnumerable<KeyValuePair<string, string>> windowsToLocal)
        {
            foreach (KeyValuePair<string, string> mount in windowsToLocal)
            {
                string prefix = mount.Key.Replace('/', '\\');
                if (!prefix.EndsWith("\\", StringComparison.Ordinal)) prefix += "\\";
                mounts.Add(new KeyValuePair<string, string>(prefix, mount.Value));
            }
            mounts.Sort(delegate(KeyValuePair<string, string> a, KeyValuePair<string, string> b)
            {
                return b.Key.Length.CompareTo(a.Key.Length);
            });
        }

        /// <summary>Adds a mapping for the rest of this host's request (the lab's export folder).</summary>
        public void AddMount(string windowsPrefix, string localFolder)
        {
            string prefix = windowsPrefix.Replace('/', '\\');
            if (!prefix.EndsWith("\\", StringComparison.Ordinal)) prefix += "\\";
            mounts.Add(new KeyValuePair<string, string>(prefix, localFolder));
            mounts.Sort(delegate(KeyValuePair<string, string> a, KeyValuePair<string, string> b)
            {
                return b.Key.Length.CompareTo(a.Key.Length);
            });
        }

        public bool DirectoryExists(string path)
        {
            string local = Resolve(path);
            return local != null && Directory.Exists(local);
        }

        public bool FileExists(string path)
        {
            string local = Resolve(path);
            return local != null && File.Exists(local);
        }

        public IList<FileEntry> ListFiles(string directory)
        {
            string local = ResolveExisting(directory);
            string prefix = Trim(directory) + "\\";
            List<FileEntry> files = new List<FileEntry>();
            foreach (FileInfo info in new DirectoryInfo(local).EnumerateFiles())
            {
                files.Add(new FileEntry(prefix + info.Name, info.Length, info.LastWriteTimeUtc));
            }
            return files;
        }

        public IList<string> ListDirectories(string directory)
        {
            string local = ResolveExisting(directory);
            string prefix = Trim(directory) + "\\";
            List<string> folders = new List<string>();
            foreach (DirectoryInfo info in new DirectoryInfo(local).EnumerateDirectories()) folders.Add(prefix + info.Name);
            return folders;
        }

        public Stream OpenRead(string path)
        {
            string local = Resolve(path);
            if (local == null || !File.Exists(local)) throw new FileNotFoundException("Could not find file '" + path + "'.", path);
            return LocalFileSystem.Instance.OpenRead(local);
        }

        private string ResolveExisting(string directory)
        {
            string local = Resolve(directory);
            if (local == null || !Directory.Exists(local))
            {
                throw new DirectoryNotFoundException("Could not find a part of the path '" + directory + "'.");
            }
            return local;
        }

        private static string Trim(string path)
        {
            string text = path.Replace('/', '\\');
            while (text.EndsWith("\\", StringComparison.Ordinal) && text.Length > 3) text = text.Substring(0, text.Length - 1);
            return text.EndsWith("\\", StringComparison.Ordinal) ? text.Substring(0, text.Length - 1) : text;
        }

        /// <summary>The local path for a Windows path, or null when no mount covers it.</summary>
        public string Resolve(string windowsPath)
        {
            if (string.IsNullOrEmpty(windowsPath)) return null;
            string path = windowsPath.Replace('/', '\\');
            string probe = path.EndsWith("\\", StringComparison.Ordinal) ? path : path + "\\";
            foreach (KeyValuePair<string, string> mount in mounts)
            {
                if (!probe.StartsWith(mount.Key, StringComparison.OrdinalIgnoreCase)) continue;
                string local = mount.Value;
                foreach (string part in path.Substring(Math.Min(path.Length, mount.Key.Length)).Split('\\'))
                {
                    if (part.Length == 0 || part == ".") continue;
                    if (part == "..") return null;  // never leave the simulated host's tree
                    local = Child(local, part);
                }
                return local;
            }
            return null;
        }

        private static string Child(string folder, string name)
        {
            string exact = Path.Combine(folder, name);
            if (File.Exists(exact) || Directory.Exists(exact) || !Directory.Exists(folder)) return exact;
            foreach (string entry in Directory.EnumerateFileSystemEntries(folder))
            {
                if (string.Equals(Path.GetFileName(entry), name, StringComparison.OrdinalIgnoreCase)) return entry;
            }
            return exact;
        }
    }

    /// <summary>A simulated host as the core sees it.</summary>
    public sealed class LabHost : IHostContext
    {
        private readonly Dictionary<string, string> variables;

        public LabHost(string computerName, DateTime utcNow, IFileSystem files, Dictionary<string, string> variables)
        {
            ComputerName = computerName;
            UtcNow = utcNow;
            Files = files;
            this.variables = new Dictionary<string, string>(variables, StringComparer.OrdinalIgnoreCase);
        }

        public IFileSystem Files { get; private set; }

        /// <summary>The host's clock when the request was made (the controller's model of it).</summary>
        public DateTime UtcNow { get; private set; }

        public string ComputerName { get; private set; }

        public string ExpandVariables(string value)
        {
            if (string.IsNullOrEmpty(value)) return value ?? "";
            System.Text.StringBuilder result = new System.Text.StringBuilder();
            int at = 0;
            while (at < value.Length)
            {
                int open = value.IndexOf('%', at);
                int close = open < 0 ? -1 : value.IndexOf('%', open + 1);
                string replacement;
                if (close < 0) { result.Append(value, at, value.Length - at); break; }
                if (variables.TryGetValue(value.Substring(open + 1, close - open - 1), out replacement))
                {
                    result.Append(value, at, open - at).Append(replacement);
                    at = close + 1;
                }
                else
                {
                    // Like Environment.ExpandEnvironmentVariables: an unknown name stays as written.
                    result.Append(value, at, close - at);
                    at = close;
                }
            }
            return result.ToString();
        }
    }

    /// <summary>The collector's parameters as bound on the controller (names as in the sidecar).</summary>
    public sealed class LabParameters
    {
        private readonly Dictionary<string, object> values;

        public LabParameters(Dictionary<string, object> values)
        {
            this.values = new Dictionary<string, object>(values ?? new Dictionary<string, object>(),
                                                         StringComparer.OrdinalIgnoreCase);
        }

        public string String(string name, string fallback)
        {
            object value;
            return values.TryGetValue(name, out value) && value != null ? Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) : fallback;
        }

        public long Number(string name, long fallback)
        {
            object value;
            if (!values.TryGetValue(name, out value) || value == null) return fallback;
            return Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture);
        }

        public int Int(string name, int fallback) { return checked((int)Number(name, fallback)); }

        public string[] Strings(string name)
        {
            object value;
            if (!values.TryGetValue(name, out value) || value == null) return new string[0];
            List<object> list = value as List<object>;
            if (list == null) return new[] { Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) };
            return list.ConvertAll(delegate(object item) { return Convert.ToString(item, System.Globalization.CultureInfo.InvariantCulture); }).ToArray();
        }
    }

    /// <summary>One collector the lab answers through the core. The harness finds every implementation in
    /// its assembly by reflection: to add a collector, add a file with a class implementing this.</summary>
    public interface ILabEntry
    {
        /// <summary>The collector id (e.g. "Get-IisW3CLog").</summary>
        string CollectorId { get; }

        /// <summary>Calls the core's entry point with the bound parameters; each string is one output object.</summary>
        IEnumerable<string> Run(IHostContext host, LabParameters parameters);
    }
}
