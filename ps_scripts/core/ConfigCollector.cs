// ConfigCollector.cs: Get-IisConfig. applicationHost.config, redirection.config and every web.config below
// the sites' physical paths, byte for byte as blobs; applicationHost.config is parsed here only to learn
// those paths. Every file is returned whole or not at all (a cut XML file cannot be parsed), and
// applicationHost.config is never charged to MaxBytes. Shared configuration (redirection.config with
// enabled="true") is recorded as data.shared_configuration {enabled, path}: IIS then reads its settings
// from that path, not from the local file returned here.
namespace IisFleet.Target
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using System.Xml;

    public static class ConfigCollector
    {
        public const string Id = "Get-IisConfig";
        public const int Version = 2;

        /// <summary>Above this size applicationHost.config is refused whole (a cap error), never cut: it is
        /// what the controller's parser accepts (toolkit.parsers._xml.MAX_XML_BYTES).</summary>
        public const long MaxApplicationHostBytes = 32L * 1024 * 1024;

        private const string ConfigFolder = "%SystemRoot%\\System32\\inetsrv\\config";

        public static string Collect(IHostContext host, int maxWebConfigDepth, int maxWebConfigCount, long maxBytes)
        {
            Envelope envelope = new Envelope(Id, Version, host);
            List<ProbeError> errors = envelope.Errors;
            JsonWriter json = envelope.Begin(1 << 16);
            string folder = host.ExpandVariables(ConfigFolder);
            string appHostPath = folder + "\\applicationHost.config";
            string redirectionPath = folder + "\\redirection.config";

            byte[] appHost = ReadWhole(host.Files, appHostPath, MaxApplicationHostBytes, "applicationHost.config", errors);
            if (appHost == null && !errors.Exists(delegate(ProbeError e) { return e.Probe == "applicationHost.config"; }))
            {
                errors.Add(new ProbeError("applicationHost.config", appHostPath, "not-installed",
                                          "applicationHost.config not found; is IIS installed?"));
            }
            json.Name("application_host_config");
            WriteFile(json, appHostPath, appHost);

            long budget = Math.Max(0L, maxBytes);
            byte[] redirection = ReadWhole(host.Files, redirectionPath, budget, "max-bytes", errors);
            if (redirection != null) budget -= redirection.Length;
            json.Name("redirection_config");
            WriteFile(json, redirectionPath, redirection);
            json.Name("shared_configuration");
            WriteSharedConfiguration(json, redirectionPath, redirection, errors);

            json.Name("web_configs").BeginArray();
            List<VirtualDirectory> directories = appHost == null ? new List<VirtualDirectory>()
                : ReadVirtualDirectories(appHost, appHostPath, errors, true);
            WebConfigWriter writer = new WebConfigWriter(host, json, errors, maxWebConfigCount, budget);
            WebConfigSearch search = new WebConfigSearch(host, errors, maxWebConfigDepth, writer.Add);
            foreach (VirtualDirectory directory in directories) search.Walk(directory);
            json.EndArray();
            return envelope.End(json);
        }

        /// <summary>The whole file, or null: absent (no error), unreadable (an error), or larger than
        /// <paramref name="limit"/> (a cap error; never cut).</summary>
        internal static byte[] ReadWhole(IFileSystem files, string path, long limit, string probe, List<ProbeError> errors)
        {
            try
            {
                using (Stream stream = files.OpenRead(path))
                {
                    long length = stream.Length;
                    if (length > limit)
                    {
                        errors.Add(new ProbeError(probe, path, "cap", string.Format(System.Globalization.CultureInfo.InvariantCulture,
                            "The file is {0} bytes and {1} bytes were left under the cap: it was left out whole rather than cut (a cut XML file cannot be parsed).",
                            length, limit)));
                        return null;
                    }
                    byte[] data = new byte[length];
                    int read = 0;
                    while (read < data.Length)
                    {
                        int count = stream.Read(data, read, data.Length - read);
                        if (count == 0) break;
                        read += count;
                    }
                    if (read < data.Length) Array.Resize(ref data, read);  // shrank while being read
                    return data;
                }
            }
            catch (FileNotFoundException)
            {
                return null;
            }
            catch (DirectoryNotFoundException)
            {
                return null;
            }
            catch (Exception error)
            {
                if (!(error is IOException || error is UnauthorizedAccessException || error is System.Security.SecurityException)) throw;
                errors.Add(ProbeError.FromException(probe, path, error));
                return null;
            }
        }

        private static void WriteFile(JsonWriter json, string path, byte[] content)
        {
            if (content == null)
            {
                json.Null();
                return;
            }
            json.BeginObject().Property("path", path).Name("content");
            BlobBuilder.Write(json, content, 0, content.Length, false);
            json.EndObject();
        }

        private static void WriteSharedConfiguration(JsonWriter json, string path, byte[] redirection, List<ProbeError> errors)
        {
            if (redirection == null)
            {
                json.Null();
                return;
            }
            bool enabled = false;
            string sharedPath = "";
            try
            {
                XmlElement element = LoadXml(redirection).DocumentElement;
                XmlElement redirect = element == null ? null : element["configurationRedirection"];
                if (redirect != null)
                {
                    // Only these two attributes: userName/password (the share's credentials) are never read.
                    enabled = string.Equals(redirect.GetAttribute("enabled").Trim(), "true", StringComparison.OrdinalIgnoreCase);
                    sharedPath = redirect.GetAttribute("path");
                }
            }
            catch (XmlException error)
            {
                errors.Add(new ProbeError("redirection.config", path, "other", "Cannot parse the file: " + error.Message));
            }
            json.BeginObject().Property("enabled", enabled).Property("path", sharedPath).EndObject();
        }

        /// <summary>An XML document that never resolves anything outside itself (no DTD, no external entity).</summary>
        internal static XmlDocument LoadXml(byte[] data)
        {
            XmlReaderSettings settings = new XmlReaderSettings();
            settings.DtdProcessing = DtdProcessing.Prohibit;
            settings.XmlResolver = null;
            settings.IgnoreComments = true;
            XmlDocument document = new XmlDocument();
            document.XmlResolver = null;
            using (XmlReader reader = XmlReader.Create(new MemoryStream(data), settings))
            {
                document.Load(reader);
            }
            return document;
        }

        /// <summary>Every virtual directory of every site, in file order or (<paramref name="deepestFirst"/>) deepest
        /// URL path first, so a web.config inside a nested application is attributed to it before its parent's
        /// walk reaches the same file.</summary>
        internal static List<VirtualDirectory> ReadVirtualDirectories(byte[] appHost, string path, List<ProbeError> errors,
                                                                      bool deepestFirst)
        {
            List<VirtualDirectory> found = new List<VirtualDirectory>();
            XmlDocument document;
            try
            {
                document = LoadXml(appHost);
            }
            catch (XmlException error)
            {
                errors.Add(new ProbeError("applicationHost.config", path, "other", "Cannot parse the file: " + error.Message));
                return found;
            }
            XmlNodeList sites = document.SelectNodes("/configuration/system.applicationHost/sites/site");
            if (sites == null) return found;
            foreach (XmlElement site in sites)
            {
                foreach (XmlNode applicationNode in site.SelectNodes("application"))
                {
                    XmlElement application = (XmlElement)applicationNode;
                    string applicationPath = application.GetAttribute("path");
                    foreach (XmlNode directoryNode in application.SelectNodes("virtualDirectory"))
                    {
                        XmlElement directory = (XmlElement)directoryNode;
                        found.Add(new VirtualDirectory(site.GetAttribute("name"), applicationPath,
                                                       JoinUrl(applicationPath, directory.GetAttribute("path")),
                                                       directory.GetAttribute("physicalPath")));
                    }
                }
            }
            if (!deepestFirst) return found;
            // A stable sort: List.Sort is not, so break ties by the original position.
            List<KeyValuePair<int, VirtualDirectory>> indexed = new List<KeyValuePair<int, VirtualDirectory>>();
            for (int i = 0; i < found.Count; i++) indexed.Add(new KeyValuePair<int, VirtualDirectory>(i, found[i]));
            indexed.Sort(delegate(KeyValuePair<int, VirtualDirectory> a, KeyValuePair<int, VirtualDirectory> b)
            {
                int byLength = b.Value.VirtualPath.Length.CompareTo(a.Value.VirtualPath.Length);
                return byLength != 0 ? byLength : a.Key.CompareTo(b.Key);
            });
            return indexed.ConvertAll(delegate(KeyValuePair<int, VirtualDirectory> pair) { return pair.Value; });
        }

        /// <summary>"/app" + "sub/dir" -> "/app/sub/dir"; the root is "/".</summary>
        internal static string JoinUrl(string basePath, string relative)
        {
            string joined = ((basePath ?? "").TrimEnd('/') + "/" + (relative ?? "").Trim('/')).TrimEnd('/');
            return joined.Length == 0 ? "/" : joined;
        }
    }

    /// <summary>A virtual directory as applicationHost.config declares it.</summary>
    public sealed class VirtualDirectory
    {
        public VirtualDirectory(string site, string applicationPath, string virtualPath, string physicalPath)
        {
            Site = site;
            ApplicationPath = applicationPath;
            VirtualPath = virtualPath;
            PhysicalPath = physicalPath;
        }

        public string Site { get; private set; }

        public string ApplicationPath { get; private set; }

        public string VirtualPath { get; private set; }

        /// <summary>As configured (unexpanded, e.g. %SystemDrive%\inetpub\wwwroot).</summary>
        public string PhysicalPath { get; private set; }
    }

    /// <summary>Called once per web.config the search finds (each path once): the virtual directory it was found
    /// under, that directory's expanded physical path, and the file.</summary>
    internal delegate void WebConfigFound(VirtualDirectory directory, string root, FileEntry file);

    /// <summary>The level-by-level web.config search below each virtual directory (Get-IisConfig and
    /// Get-IisRawArtefact use the same one).</summary>
    internal sealed class WebConfigSearch
    {
        private readonly IHostContext host;
        private readonly List<ProbeError> errors;
        private readonly int maxDepth;
        private readonly WebConfigFound found;
        private readonly HashSet<string> seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);

        public WebConfigSearch(IHostContext host, List<ProbeError> errors, int maxDepth, WebConfigFound found)
        {
            this.host = host;
            this.errors = errors;
            this.maxDepth = Math.Max(0, maxDepth);
            this.found = found;
        }

        public void Walk(VirtualDirectory directory)
        {
            string root = host.ExpandVariables(directory.PhysicalPath).TrimEnd('\\');
            if (root.Length == 0)
            {
                errors.Add(new ProbeError("physical-path", root, "not-found", "Physical path of " + directory.Site +
                                          directory.VirtualPath + " is empty."));
                return;
            }
            List<string> level = new List<string>();
            level.Add(root);
            for (int depth = 0; depth <= maxDepth && level.Count > 0; depth++)
            {
                List<string> next = new List<string>();
                foreach (string folder in level)
                {
                    IList<FileEntry> files;
                    IList<string> folders;
                    try
                    {
                        files = host.Files.ListFiles(folder);
                        folders = depth < maxDepth ? host.Files.ListDirectories(folder) : new List<string>();
                    }
                    catch (Exception error)
                    {
                        if (!(error is IOException || error is UnauthorizedAccessException || error is System.Security.SecurityException)) throw;
                        ProbeError problem = ProbeError.FromException(depth == 0 ? "physical-path" : "web.config-search", folder, error);
                        if (depth == 0 && problem.Category == "not-found")
                        {
                            problem = new ProbeError("physical-path", folder, "not-found", "Physical path of " + directory.Site +
                                                     directory.VirtualPath + " does not exist or cannot be reached.");
                        }
                        errors.Add(problem);
                        continue;
                    }
                    foreach (FileEntry file in files)
                    {
                        if (string.Equals(file.Name, "web.config", StringComparison.OrdinalIgnoreCase) && seen.Add(file.Path))
                        {
                            found(directory, root, file);
                        }
                    }
                    next.AddRange(folders);
                }
                level = next;
            }
        }
    }

    /// <summary>Get-IisConfig's use of the search: each web.config whole as a blob, within the count and byte caps.</summary>
    internal sealed class WebConfigWriter
    {
        private readonly IHostContext host;
        private readonly JsonWriter json;
        private readonly List<ProbeError> errors;
        private readonly int maxCount;
        private long budget;
        private int count;
        private bool countReported;

        public WebConfigWriter(IHostContext host, JsonWriter json, List<ProbeError> errors, int maxCount, long budget)
        {
            this.host = host;
            this.json = json;
            this.errors = errors;
            this.maxCount = Math.Max(0, maxCount);
            this.budget = budget;
        }

        public void Add(VirtualDirectory directory, string root, FileEntry file)
        {
            if (count >= maxCount)
            {
                if (!countReported)
                {
                    errors.Add(new ProbeError("max-web-config-count", file.Path, "cap", "MaxWebConfigCount (" + maxCount +
                                              ") reached; further web.config files were skipped."));
                    countReported = true;
                }
                return;
            }
            byte[] content = ConfigCollector.ReadWhole(host.Files, file.Path, budget, "max-bytes", errors);
            if (content == null) return;
            budget -= content.Length;
            count++;
            string folder = file.Path.Substring(0, Math.Max(root.Length, file.Path.Length - file.Name.Length - 1));
            string relative = folder.Length > root.Length ? folder.Substring(root.Length).Replace('\\', '/') : "";
            json.BeginObject()
                .Property("site", directory.Site)
                .Property("application_path", directory.ApplicationPath)
                .Property("virtual_path", ConfigCollector.JoinUrl(directory.VirtualPath, relative))
                .Property("physical_path", directory.PhysicalPath)
                .Property("path", file.Path)
                .Name("content");
            BlobBuilder.Write(json, content, 0, content.Length, false);
            json.EndObject();
        }
    }
}
