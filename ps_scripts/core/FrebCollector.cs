// FrebCollector.cs: Get-IisFailedRequestTrace. Failed Request Tracing files (fr*.xml) whose
// failedRequest/@statusCode is the wanted status, newest first. Only the head of each file is read to
// decide (the root element and the first event sit in the first few kilobytes); matching files are then
// returned whole, or left out whole with a cap error, never cut. A trace's time is its first event's
// TimeCreated/@SystemTime (when the request started), not LastWriteTime.
namespace IisFleet.Target
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using System.IO;
    using System.Text;
    using System.Text.RegularExpressions;
    using System.Xml;

    public static class FrebCollector
    {
        public const string Id = "Get-IisFailedRequestTrace";
        public const int Version = 2;

        /// <summary>How much of each file is read to match it: FREB writes the root element and the
        /// first event within the first kilobytes.</summary>
        public const int HeadBytes = 16 * 1024;

        private const string ServerDefault = "%SystemDrive%\\inetpub\\logs\\FailedReqLogFiles";
        private static readonly Regex SystemTime = new Regex("SystemTime=\"(\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2})",
                                                             RegexOptions.CultureInvariant);
        private static readonly Regex SiteFolder = new Regex("^W3SVC(\\d+)$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

        public static string Collect(IHostContext host, string since, int statusCode, int maxFiles, long maxBytes)
        {
            Envelope envelope = new Envelope(Id, Version, host);
            List<ProbeError> errors = envelope.Errors;
            JsonWriter json = envelope.Begin(1 << 16);
            DateTime sinceUtc = Core.ParseSince(since, host.UtcNow);
            Regex status = new Regex("<failedRequest\\b[^>]*?\\sstatusCode=\"" + statusCode.ToString(CultureInfo.InvariantCulture) +
                                     "(\\.\\d+)?\"", RegexOptions.CultureInvariant);
            List<string> searched = new List<string>();
            List<Trace> traces = Find(host, status, sinceUtc, DateTime.MaxValue, searched, errors);
            traces.Sort(delegate(Trace a, Trace b)
            {
                int byTime = b.TimeUtc.CompareTo(a.TimeUtc);
                return byTime != 0 ? byTime : string.CompareOrdinal(b.File.Path, a.File.Path);
            });
            json.StringArray("directories", searched).Name("files").BeginArray();
            WriteTraces(json, host.Files, traces, maxFiles, maxBytes, errors);
            json.EndArray();
            return envelope.End(json);
        }

        /// <summary>Every fr*.xml trace in the trace folders whose head matches <paramref name="status"/> (null: any
        /// status) and whose request time is inside [sinceUtc, untilUtc]. Unsorted.</summary>
        internal static List<Trace> Find(IHostContext host, Regex status, DateTime sinceUtc, DateTime untilUtc,
                                         List<string> searched, List<ProbeError> errors)
        {
            List<Trace> traces = new List<Trace>();
            HashSet<string> seenRoots = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            HashSet<string> seenFiles = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (string root in Roots(host, errors))
            {
                string expanded = host.ExpandVariables(root).TrimEnd('\\');
                if (expanded.Length == 0 || !seenRoots.Add(expanded) || !host.Files.DirectoryExists(expanded)) continue;
                searched.Add(expanded);
                try
                {
                    List<string> folders = new List<string>();
                    folders.Add(expanded);
                    foreach (string folder in host.Files.ListDirectories(expanded))
                    {
                        if (SiteFolder.IsMatch(LastPart(folder))) folders.Add(folder);
                    }
                    foreach (string folder in folders)
                    {
                        Match site = SiteFolder.Match(LastPart(folder));
                        foreach (FileEntry file in host.Files.ListFiles(folder))
                        {
                            string name = file.Name;
                            if (!name.StartsWith("fr", StringComparison.OrdinalIgnoreCase) ||
                                !name.EndsWith(".xml", StringComparison.OrdinalIgnoreCase) || !seenFiles.Add(file.Path)) continue;
                            Trace trace = ReadHead(host.Files, file, status, errors);
                            if (trace == null || trace.TimeUtc < sinceUtc || trace.TimeUtc > untilUtc) continue;
                            trace.SiteId = site.Success ? (long?)long.Parse(site.Groups[1].Value, CultureInfo.InvariantCulture) : null;
                            traces.Add(trace);
                        }
                    }
                }
                catch (Exception error)
                {
                    if (!(error is IOException || error is UnauthorizedAccessException || error is System.Security.SecurityException)) throw;
                    errors.Add(ProbeError.FromException("trace-directory", expanded, error));
                }
            }
            return traces;
        }

        private static void WriteTraces(JsonWriter json, IFileSystem files, List<Trace> traces, int maxFiles, long maxBytes,
                                        List<ProbeError> errors)
        {
            long budget = Math.Max(0L, maxBytes);
            int written = 0;
            foreach (Trace trace in traces)
            {
                if (written >= maxFiles)
                {
                    errors.Add(new ProbeError("max-files", trace.File.Path, "cap", "MaxFiles (" + maxFiles +
                                              ") matching traces returned; older ones were skipped."));
                    return;
                }
                byte[] content = ConfigCollector.ReadWhole(files, trace.File.Path, budget, "max-bytes", errors);
                if (content == null)
                {
                    if (budget < trace.File.Length) return;  // the budget is spent: this and older traces are skipped
                    continue;
                }
                budget -= content.Length;
                written++;
                json.BeginObject()
                    .Property("path", trace.File.Path)
                    .Property("site_id", trace.SiteId)
                    .Property("modified_utc", trace.TimeUtc)
                    .Property("size_bytes", (long)content.Length)
                    .Name("content");
                BlobBuilder.Write(json, content, 0, content.Length, false);
                json.EndObject();
            }
        }

        /// <summary>The trace folders: each site's traceFailedRequestsLogging directory + W3SVC&lt;id&gt;, the
        /// siteDefaults one, and IIS's default.</summary>
        private static List<string> Roots(IHostContext host, List<ProbeError> errors)
        {
            List<string> roots = new List<string>();
            string appHostPath = host.ExpandVariables("%SystemRoot%\\System32\\inetsrv\\config\\applicationHost.config");
            byte[] appHost = ConfigCollector.ReadWhole(host.Files, appHostPath, ConfigCollector.MaxApplicationHostBytes,
                                                       "applicationHost.config", errors);
            if (appHost == null && !errors.Exists(delegate(ProbeError e) { return e.Probe == "applicationHost.config"; }))
            {
                errors.Add(new ProbeError("applicationHost.config", appHostPath, "not-installed",
                                          "applicationHost.config not found; is IIS installed?"));
            }
            if (appHost != null)
            {
                try
                {
                    XmlDocument document = ConfigCollector.LoadXml(appHost);
                    string siteDefault = ServerDefault;
                    XmlElement defaults = document.SelectSingleNode(
                        "/configuration/system.applicationHost/sites/siteDefaults/traceFailedRequestsLogging") as XmlElement;
                    if (defaults != null && defaults.GetAttribute("directory").Length > 0) siteDefault = defaults.GetAttribute("directory");
                    foreach (XmlNode node in document.SelectNodes("/configuration/system.applicationHost/sites/site"))
                    {
                        XmlElement site = (XmlElement)node;
                        XmlElement tracing = site["traceFailedRequestsLogging"];
                        string directory = tracing != null && tracing.GetAttribute("directory").Length > 0
                            ? tracing.GetAttribute("directory") : siteDefault;
                        roots.Add(directory.TrimEnd('\\') + "\\W3SVC" + site.GetAttribute("id"));
                    }
                    roots.Add(siteDefault);
                }
                catch (XmlException error)
                {
                    errors.Add(new ProbeError("applicationHost.config", appHostPath, "other", "Cannot parse the file: " + error.Message));
                }
            }
            roots.Add(ServerDefault);
            return roots;
        }

        /// <summary>The trace's head matched against the status; null when it does not match or cannot be read.</summary>
        private static Trace ReadHead(IFileSystem files, FileEntry file, Regex status, List<ProbeError> errors)
        {
            string head;
            try
            {
                using (Stream stream = files.OpenRead(file.Path))
                {
                    byte[] buffer = new byte[HeadBytes];
                    int read = 0;
                    while (read < buffer.Length)
                    {
                        int count = stream.Read(buffer, read, buffer.Length - read);
                        if (count == 0) break;
                        read += count;
                    }
                    head = new UTF8Encoding(false, false).GetString(buffer, 0, read);
                }
            }
            catch (Exception error)
            {
                if (!(error is IOException || error is UnauthorizedAccessException || error is System.Security.SecurityException)) throw;
                errors.Add(ProbeError.FromException("trace-file", file.Path, error));
                return null;
            }
            if (status != null && !status.IsMatch(head)) return null;
            Match time = SystemTime.Match(head);
            DateTime when = file.LastWriteUtc;
            if (time.Success)
            {
                when = DateTime.ParseExact(time.Groups[1].Value, "yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture,
                                           DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal);
            }
            return new Trace(file, when);
        }

        private static string LastPart(string path)
        {
            string trimmed = path.TrimEnd('\\');
            int cut = trimmed.LastIndexOf('\\');
            return cut < 0 ? trimmed : trimmed.Substring(cut + 1);
        }

        internal sealed class Trace
        {
            public Trace(FileEntry file, DateTime timeUtc)
            {
                File = file;
                TimeUtc = timeUtc;
            }

            public FileEntry File { get; private set; }

            public DateTime TimeUtc { get; private set; }

            public long? SiteId { get; set; }
        }
    }
}
