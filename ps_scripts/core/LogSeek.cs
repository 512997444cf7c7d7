// LogSeek.cs: entering a large log at `since` without reading what comes before it. W3C lines are written
// in time order within a file (give or take the seconds the LogScan tolerates), so a binary search over byte
// offsets finds where a time starts after reading a few dozen 64 KiB probes of a 2 GB file.
namespace IisFleet.Target
{
    using System;
    using System.IO;

    public static class LogSeek
    {
        private const int ProbeBytes = 64 * 1024;

        /// <summary>A line start at or before the first line whose time is at or after `time` (0 when the
        /// file's lines do not start with a readable date and time, so the caller reads it all).</summary>
        public static long OffsetOfTime(Stream stream, long time)
        {
            long low = 0, high = stream.Length;
            byte[] probe = new byte[ProbeBytes];
            while (high - low > ProbeBytes)
            {
                long middle = low + (high - low) / 2;
                long found = FirstTimeAfter(stream, middle, probe);
                if (found == W3CTime.None) return low == 0 ? 0 : LineStartAfter(stream, low, probe);
                if (found < time) low = middle; else high = middle;
            }
            return low == 0 ? 0 : LineStartAfter(stream, low, probe);
        }

        // The time of the first dated line that starts after `offset` (within one probe), or None.
        private static long FirstTimeAfter(Stream stream, long offset, byte[] probe)
        {
            int read = ReadAt(stream, offset, probe);
            int at = Array.IndexOf(probe, (byte)'\n', 0, read);
            while (at >= 0 && at + 1 < read)
            {
                int start = at + 1;
                int end = Array.IndexOf(probe, (byte)'\n', start, read - start);
                if (end < 0) break;
                long t = W3CTime.LeadingStamp(probe, start, end - start);
                if (t != W3CTime.None) return t;
                at = end;
            }
            return W3CTime.None;
        }

        private static long LineStartAfter(Stream stream, long offset, byte[] probe)
        {
            long position = offset;
            while (true)
            {
                int read = ReadAt(stream, position, probe);
                if (read <= 0) return stream.Length;
                int newline = Array.IndexOf(probe, (byte)'\n', 0, read);
                if (newline >= 0) return position + newline + 1;
                position += read;
            }
        }

        /// <summary>How far back from the entry point a #Fields directive is looked for before falling back to
        /// the file's head (bounds what entering a 2 GB file costs).</summary>
        public const long MaxBackBytes = 8L * 1024 * 1024;

        /// <summary>The last line before `offset` that starts with `prefix` (e.g. the #Fields in force): searched
        /// backwards over at most MaxBackBytes, else the last one in the file's first 64 KiB; null when none.</summary>
        public static byte[] DirectiveBefore(Stream stream, long offset, string prefix)
        {
            byte[] probe = new byte[ProbeBytes];
            long end = offset;
            long floor = Math.Max(0, offset - MaxBackBytes);
            while (end > floor)
            {
                long start = Math.Max(floor, end - ProbeBytes);
                byte[] found = LastLineWith(stream, start, (int)(end - start), prefix, probe);
                if (found != null) return found;
                if (start == floor) break;
                // Overlap a little so a directive cut by the probe's edge is seen in the next round.
                end = start + prefix.Length;
            }
            return floor == 0 ? null : LastLineWith(stream, 0, (int)Math.Min(ProbeBytes, offset), prefix, probe);
        }

        private static byte[] LastLineWith(Stream stream, long start, int count, string prefix, byte[] probe)
        {
            int read = ReadAt(stream, start, probe, count);
            for (int i = read - 1; i >= 0; i--)
            {
                if ((i == 0 && start == 0) || (i > 0 && probe[i - 1] == '\n'))
                {
                    if (Matches(probe, i, read, prefix)) return LineAt(stream, start + i);
                }
            }
            return null;
        }

        private static bool Matches(byte[] b, int at, int read, string prefix)
        {
            if (at + prefix.Length > read) return false;
            for (int i = 0; i < prefix.Length; i++) if (b[at + i] != prefix[i]) return false;
            return true;
        }

        private static byte[] LineAt(Stream stream, long offset)
        {
            byte[] probe = new byte[ProbeBytes];
            int read = ReadAt(stream, offset, probe);
            int end = Array.IndexOf(probe, (byte)'\n', 0, read);
            if (end < 0) end = read;
            if (end > 0 && probe[end - 1] == '\r') end--;
            byte[] line = new byte[end];
            Buffer.BlockCopy(probe, 0, line, 0, end);
            return line;
        }

        private static int ReadAt(Stream stream, long offset, byte[] buffer)
        {
            return ReadAt(stream, offset, buffer, buffer.Length);
        }

        private static int ReadAt(Stream stream, long offset, byte[] buffer, int count)
        {
            stream.Seek(offset, SeekOrigin.Begin);
            int read = 0;
            while (read < count)
            {
                int n = stream.Read(buffer, read, count - read);
                if (n <= 0) break;
                read += n;
            }
            return read;
        }
    }
}
