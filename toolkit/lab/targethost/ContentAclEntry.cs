// ContentAclEntry.cs (lab harness only): Get-IisContentAcl answered by the core's ContentAclCollector, with a
// stand-in for the Windows ACL readers built from the simulated host's model (acls: and shares: of host.yml),
// handed over as the lab-only parameters __Acls / __Shares ("<lower-case path>\t<sddl>" lines).
namespace IisFleet.Lab
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using IisFleet.Target;

    public sealed class ContentAclEntry : ILabEntry
    {
        public string CollectorId { get { return ContentAclCollector.Id; } }

        public IEnumerable<string> Run(IHostContext host, LabParameters parameters)
        {
            LabContentSecurity security = new LabContentSecurity(host.Files, parameters.Strings("__Acls"),
                                                                 parameters.Strings("__Shares"),
                                                                 parameters.String("__DefaultSddl", ""));
            yield return ContentAclCollector.Collect(host, security, parameters.Int("MaxPaths", 0));
        }
    }

    /// <summary>A host's descriptors as the lab models them: a path's own entry, else its nearest parent's
    /// (children inherit), else the host default; a path the host has neither as a file, a folder nor an
    /// ACL entry is missing.</summary>
    public sealed class LabContentSecurity : IContentSecurity
    {
        private readonly IFileSystem files;
        private readonly Dictionary<string, string> acls = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        private readonly Dictionary<string, string> shares = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        private readonly string defaultSddl;

        public LabContentSecurity(IFileSystem files, string[] acls, string[] shares, string defaultSddl)
        {
            this.files = files;
            this.defaultSddl = defaultSddl;
            Load(acls, this.acls);
            Load(shares, this.shares);
        }

        private static void Load(string[] lines, Dictionary<string, string> into)
        {
            foreach (string line in lines)
            {
                int tab = line.IndexOf('\t');
                if (tab > 0) into[Trim(line.Substring(0, tab))] = line.Substring(tab + 1);
            }
        }

        private static string Trim(string path)
        {
            string text = path.Replace('/', '\\');
            while (text.EndsWith("\\", StringComparison.Ordinal) && text.Length > 3) text = text.Substring(0, text.Length - 1);
            return text;
        }

        public string ReadSddl(string path)
        {
            string key = Trim(path);
            if (!acls.ContainsKey(key) && !files.DirectoryExists(key) && !files.FileExists(key))
            {
                throw new DirectoryNotFoundException("Could not find a part of the path '" + path + "'.");
            }
            while (key.Length > 0)
            {
                string sddl;
                if (acls.TryGetValue(key, out sddl)) return sddl;
                int cut = key.TrimEnd('\\').LastIndexOf('\\');
                if (cut < 0 || key.EndsWith(":\\", StringComparison.Ordinal)) break;
                key = key.Substring(0, cut);
                if (key.EndsWith(":", StringComparison.Ordinal)) key += "\\";
            }
            return defaultSddl;
        }

        public string ReadShareSddl(string server, string share)
        {
            string sddl;
            return shares.TryGetValue("\\\\" + server + "\\" + share, out sddl) ? sddl : null;
        }
    }
}
