// DeniedFiles.cs (tests only): a file-system double that answers "access denied" the way Windows does for
// every path containing a marker, so denial can be tested here (the tests run as root, where chmod denies
// nothing). It wraps the lab's mapped file system: everything else is the simulated host's real tree.
namespace IisFleet.Lab.Tests
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using IisFleet.Lab;
    using IisFleet.Target;

    public sealed class DenyingFileSystem : IFileSystem
    {
        private readonly IFileSystem inner;
        private readonly string marker;

        public DenyingFileSystem(IFileSystem inner, string marker)
        {
            this.inner = inner;
            this.marker = marker;
        }

        private bool Denied(string path)
        {
            return !string.IsNullOrEmpty(marker) && path.IndexOf(marker, StringComparison.OrdinalIgnoreCase) >= 0;
        }

        private void Check(string path)
        {
            if (Denied(path)) throw new UnauthorizedAccessException("Access to the path '" + path + "' is denied.");
        }

        // Like File.Exists / Directory.Exists on Windows: false, not an exception, when access is denied.
        public bool DirectoryExists(string path) { return !Denied(path) && inner.DirectoryExists(path); }

        public bool FileExists(string path) { return !Denied(path) && inner.FileExists(path); }

        public IList<FileEntry> ListFiles(string directory) { Check(directory); return inner.ListFiles(directory); }

        public IList<string> ListDirectories(string directory) { Check(directory); return inner.ListDirectories(directory); }

        public Stream OpenRead(string path) { Check(path); return inner.OpenRead(path); }
    }

    public sealed class DeniedHost : IHostContext
    {
        private readonly IHostContext inner;

        public DeniedHost(IHostContext inner, string marker)
        {
            this.inner = inner;
            Files = new DenyingFileSystem(inner.Files, marker);
        }

        public IFileSystem Files { get; private set; }

        public DateTime UtcNow { get { return inner.UtcNow; } }

        public string ComputerName { get { return inner.ComputerName; } }

        public string ExpandVariables(string value) { return inner.ExpandVariables(value); }
    }

    /// <summary>Get-IisConfig on a host where paths containing DenyMarker are access-denied.</summary>
    public sealed class ConfigWithDeniedPaths : ILabEntry
    {
        public string CollectorId { get { return "Test-ConfigDenied"; } }

        public IEnumerable<string> Run(IHostContext host, LabParameters parameters)
        {
            yield return ConfigCollector.Collect(new DeniedHost(host, parameters.String("DenyMarker", "")),
                                                 parameters.Int("MaxWebConfigDepth", 3),
                                                 parameters.Int("MaxWebConfigCount", 200),
                                                 parameters.Number("MaxBytes", 8000000));
        }
    }
}

namespace IisFleet.Lab.Tests
{
    using System;
    using System.Collections.Generic;
    using IisFleet.Lab;
    using IisFleet.Target;

    /// <summary>Descriptors as Windows answers a session that may not read them: paths containing the marker,
    /// and (DenyShares) every share, throw UnauthorizedAccessException.</summary>
    public sealed class DenyingContentSecurity : IContentSecurity
    {
        private readonly IContentSecurity inner;
        private readonly string marker;
        private readonly bool denyShares;

        public DenyingContentSecurity(IContentSecurity inner, string marker, bool denyShares)
        {
            this.inner = inner;
            this.marker = marker;
            this.denyShares = denyShares;
        }

        public string ReadSddl(string path)
        {
            if (marker.Length > 0 && path.IndexOf(marker, StringComparison.OrdinalIgnoreCase) >= 0)
            {
                throw new UnauthorizedAccessException("Attempted to perform an unauthorized operation.");
            }
            return inner.ReadSddl(path);
        }

        public string ReadShareSddl(string server, string share)
        {
            if (denyShares) throw new UnauthorizedAccessException("Access is denied.");
            return inner.ReadShareSddl(server, share);
        }
    }

    public sealed class ContentAclWithDeniedPaths : ILabEntry
    {
        public string CollectorId { get { return "Test-ContentAclDenied"; } }

        public IEnumerable<string> Run(IHostContext host, LabParameters parameters)
        {
            string marker = parameters.String("DenyMarker", "");
            DeniedHost denied = new DeniedHost(host, marker);
            LabContentSecurity lab = new LabContentSecurity(denied.Files, parameters.Strings("__Acls"),
                                                            parameters.Strings("__Shares"), parameters.String("__DefaultSddl", ""));
            bool denyShares = string.Equals(parameters.String("DenyShares", ""), "True", StringComparison.OrdinalIgnoreCase);
            yield return ContentAclCollector.Collect(denied, new DenyingContentSecurity(lab, marker, denyShares),
                                                     parameters.Int("MaxPaths", 200));
        }
    }
}

namespace IisFleet.Lab.Tests
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using IisFleet.Lab;
    using IisFleet.Target;

    /// <summary>Counts the bytes the core reads from each file, to prove what it does not read.</summary>
    public sealed class CountingHost : IHostContext, IFileSystem
    {
        private readonly IHostContext inner;

        public CountingHost(IHostContext inner)
        {
            this.inner = inner;
            BytesRead = new Dictionary<string, long>(StringComparer.OrdinalIgnoreCase);
        }

        public Dictionary<string, long> BytesRead { get; private set; }

        public IFileSystem Files { get { return this; } }

        public DateTime UtcNow { get { return inner.UtcNow; } }

        public string ComputerName { get { return inner.ComputerName; } }

        public string ExpandVariables(string value) { return inner.ExpandVariables(value); }

        public bool DirectoryExists(string path) { return inner.Files.DirectoryExists(path); }

        public bool FileExists(string path) { return inner.Files.FileExists(path); }

        public IList<FileEntry> ListFiles(string directory) { return inner.Files.ListFiles(directory); }

        public IList<string> ListDirectories(string directory) { return inner.Files.ListDirectories(directory); }

        public Stream OpenRead(string path) { return new CountingStream(inner.Files.OpenRead(path), path, BytesRead); }

        private sealed class CountingStream : Stream
        {
            private readonly Stream inner;
            private readonly string path;
            private readonly Dictionary<string, long> counts;

            public CountingStream(Stream inner, string path, Dictionary<string, long> counts)
            {
                this.inner = inner;
                this.path = path;
                this.counts = counts;
            }

            public override bool CanRead { get { return true; } }
            public override bool CanSeek { get { return inner.CanSeek; } }
            public override bool CanWrite { get { return false; } }
            public override long Length { get { return inner.Length; } }
            public override long Position { get { return inner.Position; } set { inner.Position = value; } }
            public override void Flush() { }
            public override long Seek(long offset, SeekOrigin origin) { return inner.Seek(offset, origin); }
            public override void SetLength(long value) { throw new NotSupportedException(); }
            public override void Write(byte[] buffer, int offset, int count) { throw new NotSupportedException(); }

            public override int Read(byte[] buffer, int offset, int count)
            {
                int read = inner.Read(buffer, offset, count);
                long before;
                counts.TryGetValue(path, out before);
                counts[path] = before + read;
                return read;
            }

            protected override void Dispose(bool disposing)
            {
                if (disposing) inner.Dispose();
                base.Dispose(disposing);
            }
        }
    }

    /// <summary>Get-IisFailedRequestTrace, then one more object: {"path": bytes read} for every file opened.</summary>
    public sealed class FrebReadCounts : ILabEntry
    {
        public string CollectorId { get { return "Test-FrebReadCounts"; } }

        public IEnumerable<string> Run(IHostContext host, LabParameters parameters)
        {
            CountingHost counting = new CountingHost(host);
            string envelope = FrebCollector.Collect(counting, parameters.String("Since", ""), parameters.Int("StatusCode", 401),
                                                    parameters.Int("MaxFiles", 50), parameters.Number("MaxBytes", 20000000));
            yield return envelope;
            JsonWriter json = new JsonWriter();
            json.BeginObject();
            foreach (KeyValuePair<string, long> count in counting.BytesRead) json.Property(count.Key, count.Value);
            yield return json.EndObject().ToString();
        }
    }
}
