// RawArtefactCollector.cs: Get-IisRawArtefact. The raw files an incident responder keeps (W3C and HTTPERR logs
// of the window, the IIS configuration files, every web.config, the FREB traces of the window, the event logs
// exported as .evtx, the secedit export), each hashed on the host and sent in fixed-size chunks, one output
// object per chunk, so no file is ever held whole in memory on either side and an interrupted transfer can
// resume where it stopped. Wire protocol: docs/raw-artefacts.md (shared with the controller's receiver).
// What needs Windows (exporting event logs, secedit, a file's owner) goes through IArtefactSource:
// WindowsArtefactSource (RawArtefacts.Windows.cs) on a host, a double that copies the fleet's files in the lab.
namespace IisFleet.Target
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using System.IO;
    using System.Text;

    /// <summary>A file's creation, modification and access times (UTC); null when they cannot be read.</summary>
    public sealed class ArtefactTimes
    {
        public ArtefactTimes(DateTime? created, DateTime? modified, DateTime? accessed)
        {
            Created = created;
            Modified = modified;
            Accessed = accessed;
        }

        public DateTime? Created { get; private set; }

        public DateTime? Modified { get; private set; }

        public DateTime? Accessed { get; private set; }
    }

    /// <summary>What Get-IisRawArtefact needs beyond reading files: the parts that only exist on Windows.</summary>
    public interface IArtefactSource
    {
        /// <summary>Creation/modification/access times of a host path.</summary>
        ArtefactTimes Times(string path);

        /// <summary>The file's owner as DOMAIN\name (or a SID when it does not resolve); throws when it cannot be read.</summary>
        string Owner(string path);

        /// <summary>Creates an empty folder for this run's exports and returns its host path.</summary>
        string CreateExportFolder();

        /// <summary>Deletes an export folder made by CreateExportFolder and everything in it.</summary>
        void RemoveExportFolder(string folder);

        /// <summary>Deletes one exported file as soon as it was sent (the folder goes in the collector's finally).</summary>
        void DeleteExport(string path);

        /// <summary>Exports the events of <paramref name="log"/> logged in [since, until] to a new .evtx file at
        /// <paramref name="target"/>; returns how it was done (for the header's note). Throws on refusal.</summary>
        string ExportEventLog(string log, DateTime since, DateTime until, string target);

        /// <summary>Writes the local security policy export (secedit /export) to <paramref name="target"/>; returns
        /// how it was done. Throws when the export failed.</summary>
        string ExportSecurityPolicy(string target, string logPath);
    }

    public static class RawArtefactCollector
    {
        public const string Id = "Get-IisRawArtefact";
        public const int Version = 1;
        public const int DefaultChunkBytes = 4 * 1024 * 1024;
        public const int MinChunkBytes = 64 * 1024;
        public const int MaxChunkBytes = 16 * 1024 * 1024;
        /// <summary>Folder levels searched for web.config below each physical path (incident-collect's depth).</summary>
        public const int WebConfigDepth = 8;

        /// <summary>The order files are sent in: small and decisive first, so a byte cap leaves out logs, not configuration.</summary>
        public static readonly string[] AllKinds = { "config", "webconfig", "freb", "secedit", "evtx", "httperr", "w3c" };

        private const string ConfigFolder = "%SystemRoot%\\System32\\inetsrv\\config";

        public static IEnumerable<string> Collect(IHostContext host, IArtefactSource source, string since, string until,
                                                  string[] kinds, string[] eventLogs, int chunkBytes, long maxTotalBytes,
                                                  string[] have, string httpErrDirectory)
        {
            Request request = new Request(host, source, since, until, kinds, eventLogs, chunkBytes, maxTotalBytes, have,
                                          httpErrDirectory);
            return Stream(request);
        }

        /// <summary>One file to send: where it is on the host, what kind, and for exports how to make it.</summary>
        private sealed class Candidate
        {
            public string Kind;
            public string HostPath;
            /// <summary>The relative name the controller may store it under (drive letter without the colon, '/').</summary>
            public string Name;
            public string ExportLog;       // evtx: the log to export
            public bool ExportPolicy;      // secedit
            /// <summary>A file that may be absent: not found is not an error.</summary>
            public bool Optional;
        }

        private sealed class HaveEntry
        {
            public string Sha256;
            public long Size;
            public long Received;
        }

        private sealed class Request
        {
            public readonly IHostContext Host;
            public readonly IArtefactSource Source;
            public readonly DateTime Since, Until;
            public readonly List<string> Kinds = new List<string>();
            public readonly List<string> EventLogs = new List<string>();
            public readonly int ChunkBytes;
            public readonly long MaxTotalBytes;
            public readonly string HttpErrDirectory;
            public readonly Dictionary<string, HaveEntry> Have = new Dictionary<string, HaveEntry>(StringComparer.OrdinalIgnoreCase);
            public readonly List<ProbeError> FirstErrors = new List<ProbeError>();

            public Request(IHostContext host, IArtefactSource source, string since, string until, string[] kinds,
                           string[] eventLogs, int chunkBytes, long maxTotalBytes, string[] have, string httpErrDirectory)
            {
                Host = host;
                Source = source;
                DateTime now = host.UtcNow;
                Since = LogCollectors.ParseTime("Since", since, now.AddHours(-24));
                Until = LogCollectors.ParseTime("Until", until, now);
                foreach (string kind in kinds ?? new string[0])
                {
                    if (string.IsNullOrEmpty(kind) || kind.Trim().Length == 0) continue;
                    string wanted = kind.Trim().ToLowerInvariant();
                    if (Array.IndexOf(AllKinds, wanted) < 0)
                    {
                        throw new ArgumentException("Cannot process argument 'Kinds': \"" + kind + "\" is not one of " +
                                                    string.Join(", ", AllKinds) + ".");
                    }
                    if (!Kinds.Contains(wanted)) Kinds.Add(wanted);
                }
                if (Kinds.Count == 0) Kinds.AddRange(AllKinds);
                Kinds.Sort(delegate(string a, string b) { return Array.IndexOf(AllKinds, a).CompareTo(Array.IndexOf(AllKinds, b)); });
                foreach (string log in eventLogs ?? new string[0])
                {
                    if (!string.IsNullOrEmpty(log) && log.Trim().Length > 0 && !EventLogs.Contains(log.Trim())) EventLogs.Add(log.Trim());
                }
                if (EventLogs.Count == 0) EventLogs.AddRange(new[] { "Security", "System", "Application" });
                ChunkBytes = Math.Min(MaxChunkBytes, Math.Max(MinChunkBytes, chunkBytes <= 0 ? DefaultChunkBytes : chunkBytes));
                MaxTotalBytes = maxTotalBytes <= 0 ? long.MaxValue : maxTotalBytes;
                HttpErrDirectory = host.ExpandVariables(string.IsNullOrEmpty(httpErrDirectory) ? LogCollectors.HttpErrDirectory
                                                                                                 : httpErrDirectory).TrimEnd('\\');
                foreach (string line in have ?? new string[0]) ReadHave(line);
            }

            // "<sha256>\t<size>\t<received>\t<host path>": what the controller kept from an interrupted attempt.
            private void ReadHave(string line)
            {
                if (string.IsNullOrEmpty(line)) return;
                string[] fields = line.Split(new[] { '\t' }, 4);
                long size, received;
                if (fields.Length == 4 && fields[0].Length == 64 &&
                    long.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out size) &&
                    long.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out received) &&
                    received <= size && fields[3].Length > 0)
                {
                    HaveEntry entry = new HaveEntry();
                    entry.Sha256 = fields[0].ToLowerInvariant();
                    entry.Size = size;
                    entry.Received = received;
                    Have[fields[3]] = entry;
                    return;
                }
                FirstErrors.Add(new ProbeError("have", "", "other", "A Have entry is not \"<sha256>\\t<size>\\t<received>\\t<path>\" " +
                                               "with received <= size; it was ignored (that file is sent whole): " +
                                               (line.Length > 200 ? line.Substring(0, 200) : line)));
            }
        }

        /// <summary>What the whole step shares: part numbers, the byte count against the cap, the one chunk buffer,
        /// and errors waiting for the next part to carry them.</summary>
        private sealed class State
        {
            public int Part;
            public int Files;
            public long BytesSent;
            public byte[] Buffer;
            public readonly List<ProbeError> Pending = new List<ProbeError>();
        }

        private delegate void DataWriter(JsonWriter json);

        /// <summary>One envelope part; it carries every error noted since the previous part.</summary>
        private static string Part(Request request, State state, bool final, int capacity, DataWriter write)
        {
            Envelope envelope = new Envelope(Id, Version, request.Host);
            envelope.Errors.AddRange(state.Pending);
            state.Pending.Clear();
            JsonWriter json = envelope.Begin(capacity);
            write(json);
            return envelope.End(json, state.Part++, final);
        }

        private static IEnumerable<string> Stream(Request request)
        {
            State state = new State();
            state.Pending.AddRange(request.FirstErrors);
            string exportFolder = null;
            try
            {
                foreach (string kind in request.Kinds)
                {
                    foreach (Candidate candidate in Discover(request, kind, state.Pending))
                    {
                        if (candidate.ExportLog == null && !candidate.ExportPolicy)
                        {
                            foreach (string output in SendFile(request, state, candidate, candidate.HostPath, null)) yield return output;
                            continue;
                        }
                        if (exportFolder == null)
                        {
                            exportFolder = CreateExportFolder(request.Source, state.Pending);
                            if (exportFolder == null) break;  // no folder: nothing of this kind can be exported
                        }
                        string exported = exportFolder + "\\" + candidate.Name;
                        string note = Export(request, candidate, exported, state.Pending);
                        if (note == null) continue;
                        foreach (string output in SendFile(request, state, candidate, exported, note)) yield return output;
                        DeleteExport(request.Source, exported, state.Pending);
                    }
                }
            }
            finally
            {
                // The exports are this collector's own temporary files: they never outlive the step.
                if (exportFolder != null)
                {
                    try
                    {
                        request.Source.RemoveExportFolder(exportFolder);
                    }
                    catch (Exception error)
                    {
                        if (!LogFiles.IsAccessProblem(error)) throw;
                        state.Pending.Add(ProbeError.FromException("export-cleanup", exportFolder, error));
                    }
                }
            }
            yield return Part(request, state, true, 512, delegate(JsonWriter json)
            {
                json.Name("summary").BeginObject().Property("files", state.Files).Property("bytes_sent", state.BytesSent).EndObject();
            });
        }

        // ------------------------------------------------------------------ which files

        private static List<Candidate> Discover(Request request, string kind, List<ProbeError> errors)
        {
            List<Candidate> found = new List<Candidate>();
            IHostContext host = request.Host;
            if (kind == "config")
            {
                string folder = host.ExpandVariables(ConfigFolder);
                foreach (string name in new[] { "applicationHost.config", "redirection.config", "administration.config" })
                {
                    // Not "if it exists": File.Exists says false for a file this account may not read, which must be
                    // reported. A missing redirection/administration.config is normal and stays silent.
                    Candidate candidate = FileCandidate(kind, folder + "\\" + name);
                    candidate.Optional = true;
                    found.Add(candidate);
                }
                if (!host.Files.FileExists(folder + "\\applicationHost.config") && !host.Files.DirectoryExists(folder))
                {
                    errors.Add(new ProbeError("applicationHost.config", folder + "\\applicationHost.config", "not-installed",
                                              "applicationHost.config not found; is IIS installed?"));
                }
            }
            else if (kind == "webconfig")
            {
                string appHostPath = host.ExpandVariables(LogFiles.ApplicationHostConfig);
                byte[] appHost = ConfigCollector.ReadWhole(host.Files, appHostPath, ConfigCollector.MaxApplicationHostBytes,
                                                           "applicationHost.config", errors);
                if (appHost != null)
                {
                    WebConfigSearch search = new WebConfigSearch(host, errors, WebConfigDepth,
                        delegate(VirtualDirectory directory, string root, FileEntry file) { found.Add(FileCandidate(kind, file.Path)); });
                    foreach (VirtualDirectory directory in ConfigCollector.ReadVirtualDirectories(appHost, appHostPath, errors, true))
                    {
                        search.Walk(directory);
                    }
                }
            }
            else if (kind == "freb")
            {
                List<FrebCollector.Trace> traces = FrebCollector.Find(host, null, request.Since, request.Until, new List<string>(), errors);
                traces.Sort(delegate(FrebCollector.Trace a, FrebCollector.Trace b)
                {
                    int byTime = b.TimeUtc.CompareTo(a.TimeUtc);
                    return byTime != 0 ? byTime : string.CompareOrdinal(b.File.Path, a.File.Path);
                });
                foreach (FrebCollector.Trace trace in traces) found.Add(FileCandidate(kind, trace.File.Path));
            }
            else if (kind == "w3c" || kind == "httperr")
            {
                List<string> roots = new List<string>();
                if (kind == "w3c")
                {
                    roots.AddRange(LogFiles.ConfiguredW3CRoots(host, new List<ProbeError>()));  // "config" reports a missing file
                    roots.Add(LogFiles.ServerDefaultW3C);
                }
                else if (!host.Files.DirectoryExists(request.HttpErrDirectory))
                {
                    errors.Add(new ProbeError("log-directory", request.HttpErrDirectory, "not-found",
                                              "HTTPERR directory does not exist (error logging may be off)."));
                    return found;
                }
                else
                {
                    roots.Add(request.HttpErrDirectory);
                }
                // The same choice as the log collectors: the date in the name and the time of the last lines, never
                // LastWriteTime. A name whose period starts more than a day after Until holds nothing of the window.
                foreach (LogFileCandidate log in LogFiles.Discover(host, roots, kind == "w3c", kind == "httperr", request.Since,
                                                                   new List<string>(), errors))
                {
                    if (log.NameStart.HasValue && log.NameStart.Value > request.Until.AddDays(1)) continue;
                    found.Add(FileCandidate(kind, log.File.Path));
                }
            }
            else if (kind == "evtx")
            {
                foreach (string log in request.EventLogs)
                {
                    Candidate candidate = new Candidate();
                    candidate.Kind = kind;
                    candidate.HostPath = "EventLog:" + log;
                    candidate.Name = SafeLeaf(log) + ".evtx";
                    candidate.ExportLog = log;
                    found.Add(candidate);
                }
            }
            else if (kind == "secedit")
            {
                Candidate candidate = new Candidate();
                candidate.Kind = kind;
                candidate.HostPath = "secedit:/export";
                candidate.Name = "secedit.inf";
                candidate.ExportPolicy = true;
                found.Add(candidate);
            }
            return found;
        }

        private static Candidate FileCandidate(string kind, string path)
        {
            Candidate candidate = new Candidate();
            candidate.Kind = kind;
            candidate.HostPath = path;
            candidate.Name = RelativeName(path);
            return candidate;
        }

        /// <summary>C:\inetpub\logs\u_ex1.log -> C/inetpub/logs/u_ex1.log; \\srv\share\web.config -> UNC/srv/share/web.config.</summary>
        internal static string RelativeName(string path)
        {
            string text = path.Replace('/', '\\');
            if (text.StartsWith("\\\\", StringComparison.Ordinal)) text = "UNC\\" + text.Substring(2);
            else if (text.Length >= 2 && text[1] == ':') text = text.Substring(0, 1).ToUpperInvariant() + text.Substring(2);
            List<string> parts = new List<string>();
            foreach (string part in text.Split('\\'))
            {
                if (part.Length == 0 || part == "." || part == "..") continue;
                parts.Add(part);
            }
            return string.Join("/", parts.ToArray());
        }

        private static string SafeLeaf(string name)
        {
            StringBuilder safe = new StringBuilder();
            foreach (char c in name) safe.Append(char.IsLetterOrDigit(c) || c == '-' || c == '.' || c == ' ' ? c : '_');
            return safe.ToString();
        }

        // ------------------------------------------------------------------ exports (Windows-only work behind IArtefactSource)

        private static string CreateExportFolder(IArtefactSource source, List<ProbeError> errors)
        {
            try
            {
                return source.CreateExportFolder();
            }
            catch (Exception failure)
            {
                if (!LogFiles.IsAccessProblem(failure)) throw;
                errors.Add(ProbeError.FromException("export-folder", "", failure));
                return null;
            }
        }

        private static string Export(Request request, Candidate candidate, string target, List<ProbeError> errors)
        {
            try
            {
                if (candidate.ExportLog != null)
                {
                    return request.Source.ExportEventLog(candidate.ExportLog, request.Since, request.Until, target);
                }
                return request.Source.ExportSecurityPolicy(target, target + ".log");
            }
            catch (Exception failure)
            {
                // A log that does not exist or may not be read (the Security log needs Event Log Readers or an
                // administrator), or secedit refusing: that file is missing from the collection, the rest goes on.
                if (!(LogFiles.IsAccessProblem(failure) || failure is InvalidOperationException || failure is TimeoutException ||
                      failure is ArgumentException || failure is System.ComponentModel.Win32Exception))
                {
                    throw;
                }
                errors.Add(ProbeError.FromException(candidate.Kind, candidate.HostPath, failure));
                return null;
            }
        }

        private static void DeleteExport(IArtefactSource source, string path, List<ProbeError> errors)
        {
            try
            {
                source.DeleteExport(path);
            }
            catch (Exception error)
            {
                if (!LogFiles.IsAccessProblem(error)) throw;
                errors.Add(ProbeError.FromException("export-cleanup", path, error));
            }
        }

        // ------------------------------------------------------------------ one file: header, then its chunks

        private static IEnumerable<string> SendFile(Request request, State state, Candidate candidate, string openPath, string note)
        {
            FileSender sender = new FileSender(request, state, candidate, openPath, note);
            try
            {
                string header = sender.Open();
                if (header == null) yield break;
                yield return header;
                string chunk;
                while ((chunk = sender.NextChunk()) != null) yield return chunk;
            }
            finally
            {
                sender.Dispose();
            }
        }

        /// <summary>One file: opened sharing it with its writers, its snapshot [0, size) hashed, then cut into chunks read
        /// with the step's one buffer. Each method returns one finished part; access problems become errors, never
        /// exceptions, so the other files still go.</summary>
        private sealed class FileSender : IDisposable
        {
            private readonly Request request;
            private readonly State state;
            private readonly Candidate candidate;
            private readonly string openPath;
            private readonly string note;
            private Stream stream;
            private string fileId;
            private long size;
            private long position;
            private bool sending;

            public FileSender(Request request, State state, Candidate candidate, string openPath, string note)
            {
                this.request = request;
                this.state = state;
                this.candidate = candidate;
                this.openPath = openPath;
                this.note = note;
            }

            /// <summary>The header part (status send / already-collected / changed / error for the cap), an
            /// errors-only part when the file cannot be opened or read, or null for an optional file that is absent.</summary>
            public string Open()
            {
                string sha256 = null;
                long start = 0;
                string status = "send";
                string headerNote = note;
                try
                {
                    stream = request.Host.Files.OpenRead(openPath);
                    size = stream.Length;
                    HaveEntry have;
                    if (request.Have.TryGetValue(candidate.HostPath, out have))
                    {
                        // What the controller holds is still the start of this file: keep that snapshot (a live log
                        // grew since, only its first have.Size bytes belong to it) and send the rest from the last
                        // whole chunk. Otherwise the file changed: a fresh snapshot, from offset 0.
                        if (have.Size <= size && string.Equals(HashPrefix(have.Size), have.Sha256, StringComparison.Ordinal))
                        {
                            size = have.Size;
                            sha256 = have.Sha256;
                            bool complete = have.Received >= have.Size;
                            start = complete ? size : have.Received - have.Received % request.ChunkBytes;
                            status = complete ? "already-collected" : "send";
                        }
                        else
                        {
                            status = "changed";
                        }
                    }
                    if (sha256 == null && state.BytesSent + size > request.MaxTotalBytes)
                    {
                        status = "error";
                        headerNote = "cap: not sent, " + size.ToString(CultureInfo.InvariantCulture) + " bytes would pass MaxTotalBytes (" +
                                     request.MaxTotalBytes.ToString(CultureInfo.InvariantCulture) + "; " +
                                     state.BytesSent.ToString(CultureInfo.InvariantCulture) + " already sent)";
                        state.Pending.Add(new ProbeError("max-total-bytes", candidate.HostPath, "cap", "The file (" +
                            size.ToString(CultureInfo.InvariantCulture) + " bytes) was not sent: MaxTotalBytes would be passed."));
                    }
                    else if (sha256 == null)
                    {
                        sha256 = HashPrefix(size);
                    }
                    else if (status == "send" && state.BytesSent + (size - start) > request.MaxTotalBytes)
                    {
                        status = "error";
                        headerNote = "cap: the rest of the file was not sent, MaxTotalBytes would be passed";
                        state.Pending.Add(new ProbeError("max-total-bytes", candidate.HostPath, "cap",
                                                         "The rest of the file was not sent: MaxTotalBytes would be passed."));
                    }
                }
                catch (Exception error)
                {
                    if (!LogFiles.IsAccessProblem(error)) throw;
                    Dispose();
                    if (candidate.Optional && (error is FileNotFoundException || error is DirectoryNotFoundException)) return null;
                    state.Pending.Add(ProbeError.FromException("artefact", candidate.HostPath, error));
                    return Part(request, state, false, 512, delegate(JsonWriter json) { });
                }
                position = start;
                sending = status == "send" || status == "changed";
                fileId = "f" + (++state.Files).ToString(CultureInfo.InvariantCulture);
                bool exported = candidate.ExportLog != null || candidate.ExportPolicy;
                ArtefactTimes times = exported ? new ArtefactTimes(null, null, null) : ReadTimes();
                string owner = exported ? null : ReadOwner();
                long headerStart = start;
                string headerStatus = status;
                return Part(request, state, false, 1024, delegate(JsonWriter json)
                {
                    json.Name("artefacts").BeginArray().BeginObject()
                        .Property("file_id", fileId)
                        .Property("kind", candidate.Kind)
                        .Property("host_path", candidate.HostPath)
                        .Property("name", candidate.Name)
                        .Property("size", size)
                        .Property("sha256", sha256);
                    Time(json.Name("created_utc"), times.Created);
                    Time(json.Name("modified_utc"), times.Modified);
                    Time(json.Name("accessed_utc"), times.Accessed);
                    json.Property("owner", owner)
                        .Property("chunk_bytes", request.ChunkBytes)
                        .Property("start_offset", headerStart)
                        .Property("status", headerStatus)
                        .Property("note", headerNote)
                        .EndObject().EndArray();
                });
            }

            /// <summary>The next chunk part, an errors-only part when reading failed, or null when the file is done.</summary>
            public string NextChunk()
            {
                if (!sending || position >= size)
                {
                    Dispose();
                    return null;
                }
                int length = (int)Math.Min(request.ChunkBytes, size - position);
                long offset = position;
                byte[] buffer = ChunkBuffer();
                try
                {
                    stream.Seek(offset, SeekOrigin.Begin);
                    ReadExactly(buffer, length, offset);
                }
                catch (Exception error)
                {
                    if (!LogFiles.IsAccessProblem(error)) throw;
                    sending = false;
                    state.Pending.Add(ProbeError.FromException("artefact", candidate.HostPath, error));
                    Dispose();
                    return Part(request, state, false, 512, delegate(JsonWriter json) { });
                }
                position += length;
                state.BytesSent += length;
                return Part(request, state, false, length / 2 + 1024, delegate(JsonWriter json)
                {
                    json.Name("chunks").BeginArray().BeginObject()
                        .Property("file_id", fileId)
                        .Property("offset", offset)
                        .Property("length", (long)length)
                        .Name("content");
                    using (BlobBuilder blob = new BlobBuilder())
                    {
                        // The chunk's digest is the blob's: the bytes are hashed once, as they are compressed.
                        blob.Append(buffer, 0, length);
                        blob.WriteTo(json, false);
                        json.Property("sha256", blob.Sha256);
                    }
                    json.EndObject().EndArray();
                });
            }

            public void Dispose()
            {
                if (stream != null) stream.Dispose();
                stream = null;
            }

            /// <summary>SHA-256 of the file's bytes [0, count), read through the step's chunk buffer.</summary>
            private string HashPrefix(long count)
            {
                byte[] buffer = ChunkBuffer();
                using (System.Security.Cryptography.HashAlgorithm sha = BlobBuilder.NewSha256())
                {
                    stream.Seek(0, SeekOrigin.Begin);
                    long done = 0;
                    while (done < count)
                    {
                        int length = (int)Math.Min(buffer.Length, count - done);
                        ReadExactly(buffer, length, done);
                        sha.TransformBlock(buffer, 0, length, null, 0);
                        done += length;
                    }
                    sha.TransformFinalBlock(new byte[0], 0, 0);
                    return BlobBuilder.Hex(sha.Hash);
                }
            }

            private void ReadExactly(byte[] buffer, int length, long offset)
            {
                int read = 0;
                while (read < length)
                {
                    int count = stream.Read(buffer, read, length - read);
                    if (count <= 0)
                    {
                        throw new IOException("The file became shorter than its snapshot (" + size.ToString(CultureInfo.InvariantCulture) +
                                              " bytes) while it was read: " + (offset + read).ToString(CultureInfo.InvariantCulture) +
                                              " bytes remain; it was truncated or replaced.");
                    }
                    read += count;
                }
            }

            private byte[] ChunkBuffer()
            {
                if (state.Buffer == null || state.Buffer.Length < request.ChunkBytes) state.Buffer = new byte[request.ChunkBytes];
                return state.Buffer;
            }

            private ArtefactTimes ReadTimes()
            {
                try
                {
                    return request.Source.Times(openPath);
                }
                catch (Exception error)
                {
                    if (!LogFiles.IsAccessProblem(error)) throw;
                    state.Pending.Add(ProbeError.FromException("file-times", candidate.HostPath, error));
                    return new ArtefactTimes(null, null, null);
                }
            }

            private string ReadOwner()
            {
                try
                {
                    return request.Source.Owner(openPath);
                }
                catch (Exception error)
                {
                    if (!(LogFiles.IsAccessProblem(error) || error is InvalidOperationException || error is NotSupportedException)) throw;
                    state.Pending.Add(ProbeError.FromException("owner", candidate.HostPath, error));
                    return null;
                }
            }

            private static void Time(JsonWriter json, DateTime? value)
            {
                if (value.HasValue) json.Value(value.Value); else json.Null();
            }
        }
    }
}
