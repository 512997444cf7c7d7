// LogCollectors.cs: the entry points of Get-IisW3CLog and Get-IisHttpErrLog. Each call returns several
// output objects (docs/contracts.md 1.4, "Collectors that stream"): a first part with the folders searched,
// one part per file as soon as that file is done, and a final part. A step that times out keeps the parts
// that arrived.
namespace IisFleet.Target
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using System.IO;

    public static class LogCollectors
    {
        /// <summary>Kept bytes per file never exceed this, whatever MaxBytes says (the memory bound).</summary>
        public const long KeptBytesPerFileCap = 64L * 1024 * 1024;
        /// <summary>Clients listed per handshake group in the output (the most frequent).</summary>
        public const int ClientsListed = 20;
        public const string HttpErrDirectory = "%SystemRoot%\\System32\\LogFiles\\HTTPERR";

        /// <summary>Get-IisW3CLog on this machine.</summary>
        public static IEnumerable<string> W3C(string[] logDirectory, string since, string until, int handshakeWindowSeconds,
                                              int maxLinesPerFile, int maxFiles, long maxBytes)
        {
            return W3C(LocalHost.Instance, logDirectory, since, until, handshakeWindowSeconds, maxLinesPerFile, maxFiles, maxBytes);
        }

        public static IEnumerable<string> W3C(IHostContext host, string[] logDirectory, string since, string until,
                                              int handshakeWindowSeconds, int maxLinesPerFile, int maxFiles, long maxBytes)
        {
            Request request = new Request(host, "Get-IisW3CLog", 2, since, until);
            request.Window = Math.Max(0, handshakeWindowSeconds);
            request.MaxLinesPerFile = Math.Max(0, maxLinesPerFile);
            request.MaxFiles = Math.Max(0, maxFiles);
            request.MaxBytes = Math.Max(0, maxBytes);
            List<string> roots = new List<string>();
            bool explicitRoots = logDirectory != null && Array.Exists(logDirectory, delegate(string d) { return !string.IsNullOrEmpty(d); });
            if (explicitRoots)
            {
                foreach (string directory in logDirectory) if (!string.IsNullOrEmpty(directory)) roots.Add(directory);
            }
            else
            {
                roots.AddRange(LogFiles.ConfiguredW3CRoots(host, request.Errors));
                roots.Add(LogFiles.ServerDefaultW3C);
            }
            request.Candidates = LogFiles.Discover(host, roots, true, explicitRoots, request.SinceTime, request.Searched, request.Errors);
            return Stream(request, false);
        }

        /// <summary>Get-IisHttpErrLog on this machine.</summary>
        public static IEnumerable<string> HttpErr(string logDirectory, string since, string until, int maxLinesPerFile, int maxFiles)
        {
            return HttpErr(LocalHost.Instance, logDirectory, since, until, maxLinesPerFile, maxFiles);
        }

        public static IEnumerable<string> HttpErr(IHostContext host, string logDirectory, string since, string until,
                                                  int maxLinesPerFile, int maxFiles)
        {
            Request request = new Request(host, "Get-IisHttpErrLog", 2, since, until);
            request.MaxLinesPerFile = Math.Max(0, maxLinesPerFile);
            request.MaxFiles = Math.Max(0, maxFiles);
            request.MaxBytes = long.MaxValue;
            string directory = host.ExpandVariables(string.IsNullOrEmpty(logDirectory) ? HttpErrDirectory : logDirectory).TrimEnd('\\');
            request.SingleDirectory = directory;
            if (!host.Files.DirectoryExists(directory))
            {
                request.Errors.Add(new ProbeError("log-directory", directory, "not-found",
                                                  "HTTPERR directory does not exist (error logging may be off)."));
                request.Candidates = new List<LogFileCandidate>();
            }
            else
            {
                request.Candidates = LogFiles.Discover(host, new[] { directory }, false, true, request.SinceTime, request.Searched, request.Errors);
            }
            return Stream(request, true);
        }

        private sealed class Request
        {
            public readonly IHostContext Host;
            public readonly string Collector;
            public readonly int Version;
            public readonly DateTime SinceTime, UntilTime;
            public readonly List<ProbeError> Errors = new List<ProbeError>();
            public readonly List<string> Searched = new List<string>();
            public List<LogFileCandidate> Candidates;
            public int Window, MaxLinesPerFile, MaxFiles;
            public long MaxBytes;
            public string SingleDirectory;

            public Request(IHostContext host, string collector, int version, string since, string until)
            {
                Host = host;
                Collector = collector;
                Version = version;
                DateTime now = host.UtcNow;
                SinceTime = ParseTime("Since", since, now.AddHours(-24));
                UntilTime = ParseTime("Until", until, now);
            }
        }

        /// <summary>ISO 8601 parameter text as UTC (a time without zone is UTC); empty = the fallback.</summary>
        public static DateTime ParseTime(string name, string text, DateTime fallback)
        {
            if (string.IsNullOrEmpty(text) || text.Trim().Length == 0) return fallback;
            DateTime parsed;
            if (!DateTime.TryParse(text.Trim(), CultureInfo.InvariantCulture,
                                   DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out parsed))
            {
                throw new ArgumentException("Cannot process argument '" + name + "': \"" + text + "\" is not a valid ISO 8601 time.");
            }
            return parsed;
        }

        private static IEnumerable<string> Stream(Request request, bool httpErr)
        {
            List<LogFileCandidate> selected = request.Candidates;
            int part = 0;
            List<ProbeError> finalErrors = new List<ProbeError>();
            if (selected.Count > request.MaxFiles)
            {
                finalErrors.Add(new ProbeError("max-files", "", "cap", selected.Count + " log files are in the window; only the newest " +
                                               request.MaxFiles + " (MaxFiles) were read."));
                selected = selected.GetRange(0, request.MaxFiles);
            }
            // First part: where the collector looked (and what went wrong finding files).
            yield return Part(request, part++, false, request.Errors, delegate(JsonWriter json) { });
            long bytesLeft = request.MaxBytes;
            for (int i = 0; i < selected.Count; i++)
            {
                LogFileCandidate file = selected[i];
                List<ProbeError> errors = new List<ProbeError>();
                LogScan scan = null;
                try
                {
                    scan = ScanFile(request, file, NewerNeighbour(selected, i), bytesLeft, httpErr);
                }
                catch (Exception error)
                {
                    if (!LogFiles.IsAccessProblem(error)) throw;
                    errors.Add(ProbeError.FromException("log-file", file.File.Path, error));
                }
                if (scan == null)
                {
                    yield return Part(request, part++, false, errors, delegate(JsonWriter json) { });
                    continue;
                }
                if (bytesLeft != long.MaxValue) bytesLeft = Math.Max(0, bytesLeft - scan.KeptBytes);
                if (scan.Truncated)
                {
                    errors.Add(new ProbeError("excerpt-cap", file.File.Path, "cap",
                        "Kept-line cap reached (MaxLinesPerFile " + request.MaxLinesPerFile + ", MaxBytes " + request.MaxBytes +
                        "): the oldest " + scan.DroppedLines + " kept lines were dropped, the newest kept."));
                }
                LogScan done = scan;
                yield return Part(request, part++, false, errors, delegate(JsonWriter json) { WriteFile(json, file, done, httpErr); });
            }
            yield return Part(request, part, true, finalErrors, delegate(JsonWriter json) { });
        }

        // The next newer file of the same folder: 401s open at the end of a file are settled by its first lines.
        private static LogFileCandidate NewerNeighbour(List<LogFileCandidate> newestFirst, int index)
        {
            for (int j = index - 1; j >= 0; j--)
            {
                if (string.Equals(newestFirst[j].Folder, newestFirst[index].Folder, StringComparison.OrdinalIgnoreCase)) return newestFirst[j];
            }
            return null;
        }

        private static LogScan ScanFile(Request request, LogFileCandidate file, LogFileCandidate newer, long bytesLeft, bool httpErr)
        {
            LogScanSettings settings = new LogScanSettings();
            settings.Since = W3CTime.FromDateTime(request.SinceTime);
            settings.Until = W3CTime.FromDateTime(request.UntilTime);
            settings.WindowSeconds = request.Window;
            settings.KeepAllLines = httpErr;
            settings.MaxKeptLines = request.MaxLinesPerFile;
            settings.MaxKeptBytes = Math.Min(bytesLeft, KeptBytesPerFileCap);
            settings.Site = file.SiteId.HasValue ? "W3SVC" + file.SiteId.Value.ToString(CultureInfo.InvariantCulture) : "";
            LogScan scan = new LogScan(settings);
            using (Stream stream = request.Host.Files.OpenRead(file.File.Path))
            {
                scan.Scan(stream, httpErr);
            }
            if (scan.OpenAtEnd > 0 && newer != null)
            {
                try
                {
                    using (Stream stream = request.Host.Files.OpenRead(newer.File.Path)) scan.ContinueInto(stream);
                }
                catch (Exception error)
                {
                    if (!LogFiles.IsAccessProblem(error)) throw;  // unreadable now: its 401s stay terminal
                }
            }
            scan.Finish();
            return scan;
        }

        private static void WriteFile(JsonWriter json, LogFileCandidate file, LogScan scan, bool httpErr)
        {
            json.BeginObject().Property("path", file.File.Path);
            if (!httpErr)
            {
                json.Name("site_id");
                if (file.SiteId.HasValue) json.Value(file.SiteId.Value); else json.Null();
            }
            json.Property("size_bytes", file.File.Length)
                .Property("bytes_read", scan.BytesRead)
                .Property("start_offset", scan.StartOffset)
                .Property("line_numbers", scan.LineNumbersAbsolute ? "file" : "from-offset")
                .Property("lines_total", scan.LinesRead)
                .Property("data_lines", scan.DataLines)
                .Property("lines_kept", scan.KeptLines)
                .Property("truncated", scan.Truncated);
            if (!httpErr)
            {
                json.Property("status_401", scan.Status401)
                    .Property("terminal_401", scan.Terminal401)
                    .Property("handshake_401", scan.Handshake401)
                    .Name("handshakes").BeginArray();
                foreach (HandshakeGroup group in scan.Handshakes) WriteHandshakes(json, group);
                json.EndArray();
            }
            json.Name("excerpt");
            using (BlobBuilder blob = new BlobBuilder())
            {
                scan.WriteExcerpt(blob);
                blob.WriteTo(json, scan.Truncated);
            }
            json.EndObject();
        }

        private static void WriteHandshakes(JsonWriter json, HandshakeGroup group)
        {
            List<KeyValuePair<string, long>> clients = new List<KeyValuePair<string, long>>(group.Clients);
            clients.Sort(delegate(KeyValuePair<string, long> a, KeyValuePair<string, long> b)
            {
                int byCount = b.Value.CompareTo(a.Value);
                return byCount != 0 ? byCount : string.CompareOrdinal(a.Key, b.Key);
            });
            json.BeginObject()
                .Property("server", group.Server)
                .Property("site", group.Site)
                .Property("substatus", group.Substatus)
                .Property("win32", group.Win32)
                .Property("count", group.Count)
                .Name("clients").BeginArray();
            for (int i = 0; i < clients.Count && i < ClientsListed; i++)
            {
                json.BeginObject().Property("ip", clients[i].Key).Property("count", clients[i].Value).EndObject();
            }
            json.EndArray().EndObject();
        }

        private delegate void DataWriter(JsonWriter json);

        private static string Part(Request request, int index, bool final, List<ProbeError> errors, DataWriter files)
        {
            Envelope envelope = new Envelope(request.Collector, request.Version, request.Host);
            envelope.Errors.AddRange(errors);
            JsonWriter json = envelope.Begin(4096);
            if (request.SingleDirectory != null) json.Property("directory", request.SingleDirectory);
            else json.StringArray("directories", index == 0 ? request.Searched : new List<string>());
            json.Name("files").BeginArray();
            files(json);
            json.EndArray();
            return envelope.End(json, index, final);
        }
    }
}
