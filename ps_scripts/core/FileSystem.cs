// FileSystem.cs: the one way the core reaches files. On a host it is LocalFileSystem (System.IO); in the
// lab and the tests a mapping of Windows paths onto a simulated host's folder stands in.
namespace IisFleet.Target
{
    using System;
    using System.Collections.Generic;
    using System.IO;

    /// <summary>One file as a directory listing shows it.</summary>
    public sealed class FileEntry
    {
        public FileEntry(string path, long length, DateTime lastWriteUtc)
        {
            Path = path;
            Length = length;
            LastWriteUtc = lastWriteUtc;
        }

        /// <summary>Full path as the host spells it (what the envelope reports).</summary>
        public string Path { get; private set; }

        public string Name
        {
            get
            {
                int cut = Path.LastIndexOfAny(new[] { '\\', '/' });
                return cut < 0 ? Path : Path.Substring(cut + 1);
            }
        }

        public long Length { get; private set; }

        /// <summary>NTFS updates this lazily for a file another process holds open (HTTP.sys with its
        /// logs): it may be hours old for a file that has new lines. Never choose files by it alone.</summary>
        public DateTime LastWriteUtc { get; private set; }
    }

    /// <summary>Read-only file access. Every path is a host path (C:\..., \\server\share\...).</summary>
    public interface IFileSystem
    {
        bool DirectoryExists(string path);

        bool FileExists(string path);

        /// <summary>Files directly in a folder. Throws like Directory.GetFiles (not found, access denied).</summary>
        IList<FileEntry> ListFiles(string directory);

        /// <summary>Full paths of the folders directly in a folder.</summary>
        IList<string> ListDirectories(string directory);

        /// <summary>Opens for reading while other processes keep writing, appending, renaming or deleting
        /// it: FileShare.ReadWrite | FileShare.Delete, the only sharing mode that succeeds on a log
        /// HTTP.sys holds open for writing.</summary>
        Stream OpenRead(string path);
    }

    /// <summary>The host the core runs on: its files, clock, name and environment variables.</summary>
    public interface IHostContext
    {
        IFileSystem Files { get; }

        DateTime UtcNow { get; }

        string ComputerName { get; }

        /// <summary>Expands %SystemDrive% and the like, as IIS does for paths in its configuration.</summary>
        string ExpandVariables(string value);
    }

    /// <summary>System.IO, as on the host. Portable: it also runs under Mono on local paths.</summary>
    public sealed class LocalFileSystem : IFileSystem
    {
        public static readonly LocalFileSystem Instance = new LocalFileSystem();

        private const int ReadBufferBytes = 1 << 16;

        public bool DirectoryExists(string path) { return Directory.Exists(path); }

        public bool FileExists(string path) { return File.Exists(path); }

        public IList<FileEntry> ListFiles(string directory)
        {
            List<FileEntry> files = new List<FileEntry>();
            foreach (FileInfo info in new DirectoryInfo(directory).EnumerateFiles())
            {
                files.Add(new FileEntry(info.FullName, info.Length, info.LastWriteTimeUtc));
            }
            return files;
        }

        public IList<string> ListDirectories(string directory)
        {
            return new List<string>(Directory.EnumerateDirectories(directory));
        }

        public Stream OpenRead(string path)
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete,
                                  ReadBufferBytes, FileOptions.SequentialScan);
        }
    }

    /// <summary>The machine the code runs on (what a wrapper on a Windows host uses).</summary>
    public sealed class LocalHost : IHostContext
    {
        public static readonly LocalHost Instance = new LocalHost();

        public IFileSystem Files { get { return LocalFileSystem.Instance; } }

        public DateTime UtcNow { get { return DateTime.UtcNow; } }

        public string ComputerName { get { return Environment.MachineName; } }

        public string ExpandVariables(string value) { return Environment.ExpandEnvironmentVariables(value ?? ""); }
    }
}
