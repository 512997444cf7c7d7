// RawArtefactEntries.cs (tests only): Get-IisRawArtefact's core driven with file-system doubles for what
// cannot be staged on Linux as root: a file that is denied, and a log that grows while it is read (HTTP.sys
// appending after the collector took its snapshot).
namespace IisFleet.Lab.Tests
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using IisFleet.Lab;
    using IisFleet.Target;

    public sealed class RawArtefactTestEntry : ILabEntry
    {
        public string CollectorId { get { return "Test-RawArtefact"; } }

        public IEnumerable<string> Run(IHostContext host, LabParameters p)
        {
            MappedFileSystem mapped = (MappedFileSystem)host.Files;
            IFileSystem files = new GrowingFileSystem(new DenyingFileSystem(mapped, p.String("DenyMarker", "")), mapped,
                                                      p.String("GrowPath", ""), p.Int("GrowBytes", 0));
            LabArtefactSource source = new LabArtefactSource(mapped, p.Strings("__EventLogFiles"), p.String("__SeceditFile", ""),
                                                             new LabContentSecurity(mapped, p.Strings("__Acls"), new string[0], ""));
            return RawArtefactCollector.Collect(new FilesOf(host, files), source, p.String("Since", ""), p.String("Until", ""),
                                                p.Strings("Kinds"), p.Strings("EventLogs"), p.Int("ChunkBytes", 0),
                                                p.Number("MaxTotalBytes", 0), p.Strings("Have"), "");
        }
    }

    /// <summary>The same host with another file system.</summary>
    public sealed class FilesOf : IHostContext
    {
        private readonly IHostContext inner;

        public FilesOf(IHostContext inner, IFileSystem files)
        {
            this.inner = inner;
            Files = files;
        }

        public IFileSystem Files { get; private set; }

        public DateTime UtcNow { get { return inner.UtcNow; } }

        public string ComputerName { get { return inner.ComputerName; } }

        public string ExpandVariables(string value) { return inner.ExpandVariables(value); }
    }

    /// <summary>Appends bytes to one file the first time a stream opened on it is read from its start (the
    /// collector's hash pass; the discovery's tail read starts near the end): the file grows after the reader took
    /// its length, as a live IIS log does.</summary>
    public sealed class GrowingFileSystem : IFileSystem
    {
        private readonly IFileSystem inner;
        private readonly MappedFileSystem mapped;
        private readonly string growPath;
        private int growBytes;

        public GrowingFileSystem(IFileSystem inner, MappedFileSystem mapped, string growPath, int growBytes)
        {
            this.inner = inner;
            this.mapped = mapped;
            this.growPath = growPath;
            this.growBytes = growBytes;
        }

        public bool DirectoryExists(string path) { return inner.DirectoryExists(path); }

        public bool FileExists(string path) { return inner.FileExists(path); }

        public IList<FileEntry> ListFiles(string directory) { return inner.ListFiles(directory); }

        public IList<string> ListDirectories(string directory) { return inner.ListDirectories(directory); }

        public Stream OpenRead(string path)
        {
            Stream stream = inner.OpenRead(path);
            if (growBytes <= 0 || !string.Equals(path, growPath, StringComparison.OrdinalIgnoreCase)) return stream;
            return new GrowOnRead(stream, mapped.Resolve(path), this);
        }

        private sealed class GrowOnRead : Stream
        {
            private readonly Stream inner;
            private readonly string local;
            private readonly GrowingFileSystem owner;

            public GrowOnRead(Stream inner, string local, GrowingFileSystem owner)
            {
                this.inner = inner;
                this.local = local;
                this.owner = owner;
            }

            public override bool CanRead { get { return true; } }

            public override bool CanSeek { get { return true; } }

            public override bool CanWrite { get { return false; } }

            public override long Length { get { return inner.Length; } }

            public override long Position { get { return inner.Position; } set { inner.Position = value; } }

            public override void Flush() { }

            public override int Read(byte[] buffer, int offset, int count)
            {
                if (owner.growBytes > 0 && inner.Position == 0)
                {
                    using (FileStream writer = new FileStream(local, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete))
                    {
                        byte[] more = new byte[owner.growBytes];
                        for (int i = 0; i < more.Length; i++) more[i] = (byte)'+';
                        writer.Write(more, 0, more.Length);
                    }
                    owner.growBytes = 0;
                }
                return inner.Read(buffer, offset, count);
            }

            public override long Seek(long offset, SeekOrigin origin) { return inner.Seek(offset, origin); }

            public override void SetLength(long value) { throw new NotSupportedException(); }

            public override void Write(byte[] buffer, int offset, int count) { throw new NotSupportedException(); }

            protected override void Dispose(bool disposing)
            {
                if (disposing) inner.Dispose();
                base.Dispose(disposing);
            }
        }
    }
}
