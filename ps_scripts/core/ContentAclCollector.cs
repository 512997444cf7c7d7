// ContentAclCollector.cs: Get-IisContentAcl. The NTFS descriptor (SDDL) of every virtual directory's
// physical path, and for UNC paths the share's own descriptor. Finding the paths and telling "missing"
// from "access denied" is portable; reading descriptors is not, so it goes through IContentSecurity
// (WindowsContentSecurity on a host, in ContentSecurity.Windows.cs; a test double under Mono).
namespace IisFleet.Target
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using System.Security;

    /// <summary>Reads security descriptors. Throws like Windows: FileNotFound/DirectoryNotFound for a
    /// missing path, UnauthorizedAccessException when this session may not read it.</summary>
    public interface IContentSecurity
    {
        /// <summary>The SDDL (owner, group, DACL) of a file or folder.</summary>
        string ReadSddl(string path);

        /// <summary>The share's stored descriptor as SDDL, or null when none is stored (the default share
        /// permissions apply).</summary>
        string ReadShareSddl(string server, string share);
    }

    public static class ContentAclCollector
    {
        public const string Id = "Get-IisContentAcl";
        public const int Version = 2;

        public static string Collect(IHostContext host, IContentSecurity security, int maxPaths)
        {
            Envelope envelope = new Envelope(Id, Version, host);
            List<ProbeError> errors = envelope.Errors;
            JsonWriter json = envelope.Begin(1 << 14);
            string appHostPath = host.ExpandVariables("%SystemRoot%\\System32\\inetsrv\\config\\applicationHost.config");
            byte[] appHost = ConfigCollector.ReadWhole(host.Files, appHostPath, ConfigCollector.MaxApplicationHostBytes,
                                                       "applicationHost.config", errors);
            if (appHost == null && errors.Count == 0)
            {
                errors.Add(new ProbeError("applicationHost.config", appHostPath, "not-installed",
                                          "applicationHost.config not found; is IIS installed?"));
            }
            List<VirtualDirectory> directories = appHost == null ? new List<VirtualDirectory>()
                : ConfigCollector.ReadVirtualDirectories(appHost, appHostPath, errors, false);
            Dictionary<string, ShareResult> shares = new Dictionary<string, ShareResult>(StringComparer.OrdinalIgnoreCase);
            json.Name("paths").BeginArray();
            int examined = 0;
            foreach (VirtualDirectory directory in directories)
            {
                if (examined >= maxPaths)
                {
                    errors.Add(new ProbeError("max-paths", "", "cap", directories.Count + " paths are configured; only the first " +
                                              maxPaths + " (MaxPaths) were examined."));
                    break;
                }
                examined++;
                WritePath(json, host, security, directory, shares, errors);
            }
            json.EndArray();
            return envelope.End(json);
        }

        private static void WritePath(JsonWriter json, IHostContext host, IContentSecurity security, VirtualDirectory directory,
                                      Dictionary<string, ShareResult> shares, List<ProbeError> errors)
        {
            string expanded = host.ExpandVariables(directory.PhysicalPath);
            bool isUnc = expanded.StartsWith("\\\\", StringComparison.Ordinal);
            // File.Exists/Directory.Exists (and Test-Path) answer false when access is denied, so "false" alone
            // never means missing: reading the descriptor tells which it is.
            bool exists = host.Files.DirectoryExists(expanded) || host.Files.FileExists(expanded);
            string sddl = null;
            try
            {
                sddl = security.ReadSddl(expanded);
                exists = true;
            }
            catch (Exception error)
            {
                if (!(error is IOException || error is UnauthorizedAccessException || error is SecurityException)) throw;
                errors.Add(Explain(expanded, exists, error));
            }
            json.BeginObject()
                .Property("site", directory.Site)
                .Property("application_path", directory.ApplicationPath)
                .Property("virtual_path", directory.VirtualPath)
                .Property("physical_path", directory.PhysicalPath)
                .Property("expanded_path", expanded)
                .Property("exists", exists)
                .Property("is_unc", isUnc)
                .Property("sddl", sddl)
                .Name("share");
            ShareResult share = isUnc ? ReadShare(expanded, security, shares, errors) : null;
            if (share == null)
            {
                json.Null();
            }
            else
            {
                json.BeginObject().Property("server", share.Server).Property("name", share.Name)
                    .Property("sddl", share.Sddl).EndObject();
            }
            json.EndObject();
        }

        private static ProbeError Explain(string path, bool visible, Exception error)
        {
            ProbeError problem = ProbeError.FromException(visible ? "ntfs-acl" : "physical-path", path, error);
            if (problem.Category == "not-found")
            {
                return new ProbeError("physical-path", path, "not-found",
                                      "Physical path does not exist or cannot be reached from this session.");
            }
            if (problem.Category == "access-denied" && !visible)
            {
                return new ProbeError("physical-path", path, "access-denied", "Access is denied: the path may exist, but " +
                                      "this session may not see it (" + error.Message + ")");
            }
            return problem;
        }

        private static ShareResult ReadShare(string uncPath, IContentSecurity security, Dictionary<string, ShareResult> cache,
                                             List<ProbeError> errors)
        {
            string[] parts = uncPath.TrimStart('\\').Split('\\');
            if (parts.Length < 2 || parts[0].Length == 0 || parts[1].Length == 0) return null;
            string key = parts[0] + "\\" + parts[1];
            ShareResult result;
            if (cache.TryGetValue(key, out result)) return result;
            try
            {
                result = new ShareResult(parts[0], parts[1], security.ReadShareSddl(parts[0], parts[1]));
            }
            catch (Exception error)
            {
                if (!(error is IOException || error is UnauthorizedAccessException || error is SecurityException)) throw;
                errors.Add(ProbeError.FromException("share-acl", "\\\\" + key, error));
                result = null;
            }
            cache[key] = result;
            return result;
        }

        private sealed class ShareResult
        {
            public ShareResult(string server, string name, string sddl)
            {
                Server = server;
                Name = name;
                Sddl = sddl;
            }

            public string Server { get; private set; }

            public string Name { get; private set; }

            public string Sddl { get; private set; }
        }
    }
}
