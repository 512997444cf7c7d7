// LogScan.cs: reads one W3C or HTTPERR log from `since` on and keeps what the controller needs. For W3C logs
// each 401 is classified here with the rule of toolkit/logs (docs/analyze.md, "Handshake or terminal"):
// handshakes are only counted; terminal 401s are kept as lines, with the same client's other lines inside
// the window after them. Memory is bounded: one read buffer, the 401s still inside their window, and the
// kept lines (newest kept when a cap is reached).
namespace IisFleet.Target
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using System.Text;

    /// <summary>A kept line: its number (in the file, or counted from where reading started) and bytes.</summary>
    public struct KeptLine
    {
        public long Number;
        public byte[] Bytes;

        public KeptLine(long number, byte[] bytes)
        {
            Number = number;
            Bytes = bytes;
        }
    }

    /// <summary>Handshake 401s of one server/site/substatus/win32, with the clients that sent them.</summary>
    public sealed class HandshakeGroup
    {
        public const int MaxClients = 2048;
        public string Server, Site, Substatus, Win32;
        public long Count;
        // Client address bytes -> count in an open-addressing table kept at most half full (so probes stay
        // short; it grows from 64 slots to 2 * MaxClients): one handshake is counted per 401, and a Dictionary
        // of lists cost more than the rest of it.
        private long[] hashes = new long[64];
        private byte[][] ips = new byte[64][];
        private long[] counts = new long[64];
        private int distinct;

        public void AddClient(byte[] b, int at, int length)
        {
            ulong hash = 14695981039346656037UL;
            for (int i = at; i < at + length; i++) { hash ^= b[i]; hash *= 1099511628211UL; }
            int slot = Probe((long)hash, b, at, length);
            if (ips[slot] != null) { counts[slot]++; return; }
            if (distinct >= MaxClients) return;  // the output lists the 20 most frequent anyway
            if ((distinct + 1) * 2 > ips.Length)
            {
                Grow();
                slot = Probe((long)hash, b, at, length);
            }
            byte[] ip = new byte[length];
            Buffer.BlockCopy(b, at, ip, 0, length);
            ips[slot] = ip;
            hashes[slot] = (long)hash;
            counts[slot] = 1;
            distinct++;
        }

        // The slot holding this address, or the empty slot where it belongs.
        private int Probe(long hash, byte[] b, int at, int length)
        {
            int mask = ips.Length - 1;
            int slot = (int)(hash ^ (hash >> 32)) & mask;
            while (true)
            {
                byte[] known = ips[slot];
                if (known == null) return slot;
                if (hashes[slot] == hash && known.Length == length)
                {
                    bool same = true;
                    for (int i = 0; i < length && same; i++) same = known[i] == b[at + i];
                    if (same) return slot;
                }
                slot = (slot + 1) & mask;
            }
        }

        private void Grow()
        {
            long[] oldHashes = hashes, oldCounts = counts;
            byte[][] oldIps = ips;
            hashes = new long[oldIps.Length * 2];
            ips = new byte[oldIps.Length * 2][];
            counts = new long[oldIps.Length * 2];
            for (int i = 0; i < oldIps.Length; i++)
            {
                if (oldIps[i] == null) continue;
                int slot = Probe(oldHashes[i], oldIps[i], 0, oldIps[i].Length);
                ips[slot] = oldIps[i];
                hashes[slot] = oldHashes[i];
                counts[slot] = oldCounts[i];
            }
        }

        /// <summary>Client addresses (as logged, UTF-8) and their counts.</summary>
        public Dictionary<string, long> Clients
        {
            get
            {
                Dictionary<string, long> result = new Dictionary<string, long>(StringComparer.Ordinal);
                for (int slot = 0; slot < ips.Length; slot++)
                {
                    if (ips[slot] == null) continue;
                    string ip = Encoding.UTF8.GetString(ips[slot]);
                    long seen;
                    result[ip] = result.TryGetValue(ip, out seen) ? seen + counts[slot] : counts[slot];
                }
                return result;
            }
        }
    }

    /// <summary>The last date or time field seen and its value, so a repeated one is not parsed again.</summary>
    internal sealed class ParsedField
    {
        private byte[] bytes = new byte[16];
        private int length = -1;
        private long value = W3CTime.None;

        public long Get(byte[] b, int at, int count, bool date)
        {
            if (count == length && LogScan.Same(bytes, 0, count, b, at, count)) return value;
            if (bytes.Length < count) bytes = new byte[count];
            Buffer.BlockCopy(b, at, bytes, 0, count);
            length = count;
            value = date ? W3CTime.Day(b, at, count) : W3CTime.Clock(b, at, count);
            return value;
        }
    }

    /// <summary>Strings of short, repetitive fields (substatus, win32 codes), made once per distinct value.</summary>
    internal sealed class StringCache
    {
        private const int Slots = 64;
        private readonly byte[][] keys = new byte[Slots][];
        private readonly string[] values = new string[Slots];

        public string Get(byte[] b, int at, int length)
        {
            int slot = length;
            for (int i = at; i < at + length; i++) slot = slot * 31 + b[i];
            slot &= Slots - 1;
            byte[] key = keys[slot];
            if (key != null && key.Length == length)
            {
                bool same = true;
                for (int i = 0; i < length && same; i++) same = key[i] == b[at + i];
                if (same) return values[slot];
            }
            key = new byte[length];
            Buffer.BlockCopy(b, at, key, 0, length);
            keys[slot] = key;
            values[slot] = Encoding.UTF8.GetString(b, at, length);
            return values[slot];
        }
    }

    /// <summary>A 401 whose window is still open.</summary>
    internal sealed class Open401
    {
        public long T;
        public long Offset;
        public long Number;
        // The line's bytes: a slice of the read buffer until the buffer is reused (LogScan.Detach copies it).
        public byte[] Line;
        public int LineAt, LineLength;
        public int IpAt, IpLength, StemAt, StemLength, UaAt = -1, UaLength;  // positions in Line
        public string Server, Site;
        public string Substatus, Win32;
        public bool Settled;
        public ClientState Client;
        public Open401 Next;  // the client's next open 401
    }

    /// <summary>One client address while it has open 401s: the 401s, and its other lines in case one of them
    /// turns out terminal (those of the same user agent inside the window are then kept with it).</summary>
    internal sealed class ClientState
    {
        public const int MaxLines = 32;
        public long Key;
        public int Open;
        public Open401 First;
        public List<KeptLine> Lines;  // made when the client's first other line arrives
        public List<long> Times;
        public List<int> UaAt, UaLength;  // user agent position in each kept line (-1: not logged)
        public ClientState NextInBucket;  // ClientTable's chain
    }

    /// <summary>Clients with open 401s by the hash of their c-ip bytes (compared exactly by the caller). Every
    /// 401 adds a client and its answer removes it, so the states are chained in an array of buckets and
    /// reused: a Dictionary and a new object per 401 cost more than the rest of the bookkeeping.</summary>
    internal sealed class ClientTable
    {
        private const int MaxSpare = 1024;
        private ClientState[] buckets = new ClientState[256];
        private int count;
        private readonly Stack<ClientState> spare = new Stack<ClientState>();

        public ClientState Find(long key)
        {
            for (ClientState client = buckets[Bucket(key, buckets.Length)]; client != null; client = client.NextInBucket)
            {
                if (client.Key == key) return client;
            }
            return null;
        }

        public ClientState Add(long key)
        {
            if (count >= buckets.Length * 2) Grow();
            ClientState client = spare.Count > 0 ? spare.Pop() : new ClientState();
            client.Key = key;
            int bucket = Bucket(key, buckets.Length);
            client.NextInBucket = buckets[bucket];
            buckets[bucket] = client;
            count++;
            return client;
        }

        /// <summary>Forgets a client that has no open 401 left (its First is null).</summary>
        public void Remove(ClientState client)
        {
            int bucket = Bucket(client.Key, buckets.Length);
            if (buckets[bucket] == client) buckets[bucket] = client.NextInBucket;
            else
            {
                ClientState before = buckets[bucket];
                while (before.NextInBucket != client) before = before.NextInBucket;
                before.NextInBucket = client.NextInBucket;
            }
            client.NextInBucket = null;
            count--;
            if (client.Lines != null)
            {
                client.Lines.Clear();
                client.Times.Clear();
                client.UaAt.Clear();
                client.UaLength.Clear();
            }
            if (spare.Count < MaxSpare) spare.Push(client);
        }

        private static int Bucket(long key, int length)
        {
            return (int)(key ^ (key >> 32)) & (length - 1);
        }

        private void Grow()
        {
            ClientState[] old = buckets;
            buckets = new ClientState[old.Length * 2];
            foreach (ClientState head in old)
            {
                ClientState client = head;
                while (client != null)
                {
                    ClientState next = client.NextInBucket;
                    int bucket = Bucket(client.Key, buckets.Length);
                    client.NextInBucket = buckets[bucket];
                    buckets[bucket] = client;
                    client = next;
                }
            }
        }
    }

    public sealed class LogScanSettings
    {
        public long Since = long.MinValue;
        public long Until = long.MaxValue;
        public int WindowSeconds = 30;
        /// <summary>HTTPERR: keep every data line in the window, classify nothing.</summary>
        public bool KeepAllLines;
        public int MaxKeptLines = 200000;
        public long MaxKeptBytes = 50000000;
        /// <summary>The site of lines that do not log s-sitename ("W3SVC1"), or "".</summary>
        public string Site = "";
    }

    public sealed class LogScan
    {
        /// <summary>Lines written slightly out of time order are tolerated this far (seconds), as in toolkit/logs.</summary>
        public const int SlackSeconds = 5;
        /// <summary>A 401 with no readable time stays open for this many bytes of log (toolkit/logs: one 16 MiB buffer).</summary>
        public const long UntimedReachBytes = 16L * 1024 * 1024;
        /// <summary>Files larger than this are entered by a binary search for `since` (W3C logs are time-ordered).</summary>
        public const long SeekThresholdBytes = 4L * 1024 * 1024;
        /// <summary>Open 401s beyond this many are closed oldest first as terminal (memory bound; never seen in practice).</summary>
        public const int MaxOpen = 1000000;
        private const int ExtraBytesPerLine = 12;
        private const int BufferBytes = 1 << 20;
        private const int MaxLineBytes = 16 << 20;

        private readonly LogScanSettings settings;
        // Clients with open 401s, by a hash of their c-ip bytes (compared exactly on a hit).
        private readonly ClientTable clients = new ClientTable();
        private readonly Queue<Open401> openOrder = new Queue<Open401>();
        private readonly Dictionary<string, HandshakeGroup> handshakes = new Dictionary<string, HandshakeGroup>(StringComparer.Ordinal);
        private readonly List<KeptLine> directives = new List<KeptLine>();
        // Open 401s whose Line still points into the read buffer.
        private readonly List<Open401> inBuffer = new List<Open401>();
        private HandshakeGroup lastGroup;
        private readonly Queue<KeptLine> kept = new Queue<KeptLine>();
        private long keptBytes;
        private long runningMax = long.MinValue;
        private int openCount;
        private int[] fieldAt = new int[64];
        private W3CLayout layout;
        private bool httpErrFile;
        private bool resolveOnly;

        public LogScan(LogScanSettings settings) { this.settings = settings; }

        /// <summary>Data lines read (directives and blank lines excluded).</summary>
        public long LinesRead { get; private set; }
        /// <summary>Well-formed data lines inside [since, until]: the requests (HTTPERR: the entries).</summary>
        public long DataLines { get; private set; }
        public long Status401 { get; private set; }
        public long Terminal401 { get; private set; }
        public long Handshake401 { get; private set; }
        public long Malformed { get; private set; }
        public long BytesRead { get; private set; }
        /// <summary>Byte offset where reading started (after the binary search for `since`).</summary>
        public long StartOffset { get; private set; }
        /// <summary>Line numbers are the file's own when reading started at the top, else counted from StartOffset.</summary>
        public bool LineNumbersAbsolute { get; private set; }
        /// <summary>Kept data lines dropped to stay within the caps (the oldest ones).</summary>
        public long DroppedLines { get; private set; }
        public bool Truncated { get { return DroppedLines > 0; } }
        public ICollection<HandshakeGroup> Handshakes { get { return handshakes.Values; } }
        public int OpenAtEnd { get { return openCount; } }

        /// <summary>Reads the whole stream (from `since` on when the file is large).</summary>
        public void Scan(Stream stream, bool httpErr)
        {
            httpErrFile = httpErr;
            long start = 0;
            LineNumbersAbsolute = true;
            if (stream.CanSeek && stream.Length > SeekThresholdBytes && settings.Since != long.MinValue)
            {
                long margin = settings.WindowSeconds + SlackSeconds + 60;
                start = LogSeek.OffsetOfTime(stream, settings.Since - margin);
                if (start > 0)
                {
                    LineNumbersAbsolute = false;
                    byte[] fields = LogSeek.DirectiveBefore(stream, start, "#Fields:");
                    if (fields != null)
                    {
                        layout = W3CLayout.FromDirective(fields, 0, fields.Length, httpErrFile);
                        directives.Add(new KeptLine(0, fields));
                    }
                }
            }
            StartOffset = start;
            stream.Seek(start, SeekOrigin.Begin);
            Read(stream, start, 0);
        }

        /// <summary>Only settles 401s carried over from the previous file of the same folder against the
        /// start of this (newer) file; counts and keeps nothing of it.</summary>
        public void ContinueInto(Stream stream)
        {
            if (openCount == 0) return;
            resolveOnly = true;
            layout = null;
            runningMax = long.MinValue;
            Read(stream, 0, 0);
            resolveOnly = false;
        }

        /// <summary>End of the evidence: every 401 still open never got its answer, so it is terminal.</summary>
        public void Finish()
        {
            while (openOrder.Count > 0)
            {
                Open401 ev = openOrder.Dequeue();
                if (!ev.Settled) Settle(ev, false);
            }
        }

        private void Read(Stream stream, long offset, long firstNumber)
        {
            byte[] buffer = new byte[BufferBytes];
            int filled = 0, pos = 0;
            long number = firstNumber;
            long bufferOffset = offset;  // file offset of buffer[0]
            bool eof = false, bomChecked = offset != 0;
            while (true)
            {
                int newline = pos < filled ? ScanLine(buffer, pos, filled) : -1;
                if (newline < 0 && !eof)
                {
                    // Move the incomplete line to the front and read more; open 401s keep copies of their lines.
                    Detach(buffer);
                    if (pos > 0)
                    {
                        Buffer.BlockCopy(buffer, pos, buffer, 0, filled - pos);
                        bufferOffset += pos;
                        filled -= pos;
                        pos = 0;
                    }
                    if (filled == buffer.Length)
                    {
                        if (buffer.Length >= MaxLineBytes) { pos = filled; Malformed++; continue; }  // a giant line: drop it
                        Array.Resize(ref buffer, buffer.Length * 2);
                    }
                    int n = stream.Read(buffer, filled, buffer.Length - filled);
                    if (n <= 0) eof = true;
                    else
                    {
                        filled += n;
                        BytesRead += n;
                    }
                    CopyWords(buffer, filled);
                    if (!bomChecked && (filled >= 3 || eof))
                    {
                        bomChecked = true;
                        // A UTF-8 byte order mark is no part of the first line.
                        if (filled >= 3 && buffer[0] == 0xEF && buffer[1] == 0xBB && buffer[2] == 0xBF) pos = 3;
                    }
                    continue;
                }
                int end = newline < 0 ? filled : newline;
                if (newline < 0 && pos >= filled) break;  // end of the stream
                number++;
                bool go = Line(buffer, pos, end - pos, number, bufferOffset + pos);
                pos = end + 1;
                if (!go) break;
                if (newline < 0) break;  // the last line had no newline (a file being written, or cut)
            }
            Detach(buffer);
        }

        // The read buffer is about to be reused: 401s still open copy their lines out of it.
        private void Detach(byte[] buffer)
        {
            foreach (Open401 ev in inBuffer)
            {
                if (ev.Settled || !ReferenceEquals(ev.Line, buffer)) continue;
                byte[] copy = Copy(buffer, ev.LineAt, ev.LineLength);
                int shift = ev.LineAt;
                ev.Line = copy;
                ev.LineAt = 0;
                ev.IpAt -= shift;
                ev.StemAt -= shift;
                if (ev.UaAt >= 0) ev.UaAt -= shift;
            }
            inBuffer.Clear();
        }

        // One line; returns false when nothing later in the file can matter.
        private bool Line(byte[] b, int at, int length, long number, long offset)
        {
            if (length > 0 && b[at + length - 1] == '\r') length--;
            if (IsBlank(b, at, length)) return true;
            if (b[at] == '#')
            {
                if (StartsWith(b, at, length, "#Fields:")) layout = W3CLayout.FromDirective(b, at, length, httpErrFile);
                else if (StartsWith(b, at, length, "#Software:") && Contains(b, at, length, "HTTP API")) httpErrFile = true;
                if (!resolveOnly) directives.Add(new KeptLine(number, Copy(b, at, length)));
                return true;
            }
            if (!resolveOnly) LinesRead++;
            int fields = fieldCount;  // ScanLine recorded where each field starts
            lineEnd = at + length;
            W3CLayout current = layout;
            if (current == null)
            {
                current = W3CLayout.ForFieldCount(fields);
                if (current != null && !Plausible(b, current)) current = null;
            }
            if (current == null || fields != current.Width)
            {
                if (!resolveOnly) Malformed++;
                return true;
            }
            if (!current.HttpErrKind && current.Status >= 0 && current.Win32 >= 0 && Is401(b, current.Status)
                && !Win32Fits(b, fieldAt[current.Win32], FieldLength(current.Win32)))
            {
                // A code that does not fit in 32 bits would be masked into another, valid-looking one:
                // the line is malformed, as in toolkit/logs.
                if (!resolveOnly) Malformed++;
                return true;
            }
            long t = TimeOf(b, current);
            if (t != W3CTime.None)
            {
                if (t > runningMax) runningMax = t;
                Expire(offset);
                if (t < settings.Since) return true;
            }
            else if (openCount > 0)
            {
                Expire(offset);
            }
            bool inWindow = t == W3CTime.None || t <= settings.Until;
            if (!inWindow && openCount == 0 && t > settings.Until + settings.WindowSeconds + SlackSeconds) return false;
            if (resolveOnly)
            {
                if (openCount == 0) return false;
                if (current.Classifiable) Meet(b, at, length, current, t, number, false);
                return true;
            }
            if (!inWindow)
            {
                if (openCount > 0 && current.Classifiable) Meet(b, at, length, current, t, number, false);
                return true;
            }
            if (settings.KeepAllLines)
            {
                DataLines++;
                Keep(number, Copy(b, at, length));
                return true;
            }
            if (current.HttpErrKind) return true;  // an HTTP.sys error line is no request (toolkit/logs: httperr)
            DataLines++;
            if (current.Status < 0) return true;
            if (Is401(b, current.Status))
            {
                Status401++;
                Open(b, at, length, current, t, number, offset);
                return true;
            }
            if (current.Classifiable && openCount > 0) Meet(b, at, length, current, t, number, true);
            return true;
        }

        // A new 401: open until a later success of the same client settles it, or its window closes.
        private void Open(byte[] b, int at, int length, W3CLayout current, long t, long number, long offset)
        {
            Open401 ev = new Open401();
            ev.T = t;
            ev.Offset = offset;
            ev.Number = number;
            ev.Line = b;
            ev.LineAt = at;
            ev.LineLength = length;
            ev.Server = current.ComputerName >= 0 ? Field(b, current.ComputerName) : "";
            ev.Site = current.SiteName >= 0 ? Field(b, current.SiteName) : settings.Site;
            ev.Substatus = current.Substatus >= 0 ? codes.Get(b, fieldAt[current.Substatus], FieldLength(current.Substatus)) : "-";
            ev.Win32 = current.Win32 >= 0 ? codes.Get(b, fieldAt[current.Win32], FieldLength(current.Win32)) : "-";
            if (!current.Classifiable)
            {
                // No c-ip or cs-uri-stem: no later line can be matched to it (toolkit/logs: terminal).
                Settle(ev, false);
                return;
            }
            ev.IpAt = fieldAt[current.ClientIp];
            ev.IpLength = FieldLength(current.ClientIp);
            ev.StemAt = fieldAt[current.Stem];
            ev.StemLength = FieldLength(current.Stem);
            if (current.UserAgent >= 0)
            {
                ev.UaAt = fieldAt[current.UserAgent];
                ev.UaLength = FieldLength(current.UserAgent);
            }
            inBuffer.Add(ev);
            long key = ClientKey(b, ev.IpAt, ev.IpLength, -1, 0);
            ClientState client = clients.Find(key) ?? clients.Add(key);
            // Append: a client's 401s stay in line order.
            if (client.First == null) client.First = ev;
            else
            {
                Open401 last = client.First;
                while (last.Next != null) last = last.Next;
                last.Next = ev;
            }
            client.Open++;
            ev.Client = client;
            openOrder.Enqueue(ev);
            openCount++;
            if (openCount > MaxOpen)
            {
                while (openOrder.Count > 0 && openCount > MaxOpen)
                {
                    Open401 oldest = openOrder.Dequeue();
                    if (!oldest.Settled) Settle(oldest, false);
                }
            }
        }

        // A later line of an address with open 401s. A status below 400 settles that client's open 401s for
        // the same URL before it (docs/analyze.md); any other line is remembered in case one of them turns
        // out terminal (`follow`).
        private void Meet(byte[] b, int at, int length, W3CLayout current, long t, long number, bool follow)
        {
            int ipAt = fieldAt[current.ClientIp], ipLength = FieldLength(current.ClientIp);
            ClientState client = clients.Find(ClientKey(b, ipAt, ipLength, -1, 0));
            if (client == null) return;
            int uaAt = -1, uaLength = 0;
            if (current.UserAgent >= 0) { uaAt = fieldAt[current.UserAgent]; uaLength = FieldLength(current.UserAgent); }
            int statusAt = fieldAt[current.Status];
            bool success = FieldLength(current.Status) == 3 && b[statusAt] >= '0' && b[statusAt] <= '3'
                           && IsDigit(b[statusAt + 1]) && IsDigit(b[statusAt + 2]);
            if (success)
            {
                int stemAt = fieldAt[current.Stem], stemLength = FieldLength(current.Stem);
                string server = null, site = null;
                for (Open401 ev = client.First; ev != null; ev = ev.Next)
                {
                    if (ev.Settled) continue;
                    if (!Same(b, ipAt, ipLength, ev.Line, ev.IpAt, ev.IpLength) || !Same(b, stemAt, stemLength, ev.Line, ev.StemAt, ev.StemLength)) continue;
                    if (uaAt >= 0 && ev.UaAt >= 0 && !Same(b, uaAt, uaLength, ev.Line, ev.UaAt, ev.UaLength)) continue;
                    if (server == null)
                    {
                        server = current.ComputerName >= 0 ? Field(b, current.ComputerName) : "";
                        site = current.SiteName >= 0 ? Field(b, current.SiteName) : settings.Site;
                    }
                    if (server != ev.Server || site != ev.Site) continue;
                    if (ev.T != W3CTime.None)
                    {
                        // The log moved past this 401's window before this line (a line logged far ahead, or the
                        // 401 itself logged late): the user saw it, whatever time this success carries. The queue
                        // Expire walks is in line order, so a later-opened 401 with an earlier time can wait there.
                        if (runningMax != long.MinValue && runningMax - ev.T > settings.WindowSeconds + SlackSeconds)
                        {
                            Settle(ev, false);
                            continue;
                        }
                        if (t == W3CTime.None) continue;  // a success with no readable time does not settle a timed 401
                        Settle(ev, t - ev.T <= settings.WindowSeconds);
                    }
                    else
                    {
                        Settle(ev, true);
                    }
                }
            }
            if (!follow || client.Open == 0 || !Same(b, ipAt, ipLength, client.First.Line, client.First.IpAt, client.First.IpLength)) return;
            if (client.Lines == null)
            {
                client.Lines = new List<KeptLine>();
                client.Times = new List<long>();
                client.UaAt = new List<int>();
                client.UaLength = new List<int>();
            }
            if (client.Lines.Count >= ClientState.MaxLines) return;
            client.Lines.Add(new KeptLine(number, Copy(b, at, length)));
            client.Times.Add(t);
            client.UaAt.Add(uaAt < 0 ? -1 : uaAt - at);
            client.UaLength.Add(uaLength);
        }

        private void Settle(Open401 ev, bool handshake)
        {
            if (ev.Settled) return;
            ev.Settled = true;
            ClientState client = ev.Client;
            if (client != null)
            {
                openCount--;
                client.Open--;
            }
            if (handshake)
            {
                Handshake401++;
                CountHandshake(ev);
            }
            else
            {
                Terminal401++;
                Keep(ev.Number, Copy(ev.Line, ev.LineAt, ev.LineLength));
                if (client != null && client.Lines != null)
                {
                    for (int i = 0; i < client.Lines.Count; i++)
                    {
                        KeptLine line = client.Lines[i];
                        if (line.Bytes == null || line.Number <= ev.Number) continue;
                        long t = client.Times[i];
                        if (ev.T != W3CTime.None && t != W3CTime.None && t - ev.T > settings.WindowSeconds) continue;
                        int lineUa = client.UaAt[i];
                        if (lineUa >= 0 && ev.UaAt >= 0 && !Same(line.Bytes, lineUa, client.UaLength[i], ev.Line, ev.UaAt, ev.UaLength)) continue;
                        Keep(line.Number, line.Bytes);
                        client.Lines[i] = new KeptLine(line.Number, null);  // kept once
                    }
                }
            }
            if (client != null)
            {
                // Unlink settled 401s from the front; forget the client when none is open.
                while (client.First != null && client.First.Settled) client.First = client.First.Next;
                if (client.Open == 0) clients.Remove(client);
            }
            ev.Client = null;
        }

        private void CountHandshake(Open401 ev)
        {
            // Substatus and win32 strings come from a small cache, so one group is usually the last one used.
            HandshakeGroup group = lastGroup;
            if (group == null || !ReferenceEquals(group.Substatus, ev.Substatus) || !ReferenceEquals(group.Win32, ev.Win32)
                || group.Server != ev.Server || group.Site != ev.Site)
            {
                string key = ev.Server + "\n" + ev.Site + "\n" + ev.Substatus + "\n" + ev.Win32;
                if (!handshakes.TryGetValue(key, out group))
                {
                    group = new HandshakeGroup();
                    group.Server = ev.Server;
                    group.Site = ev.Site;
                    group.Substatus = ev.Substatus;
                    group.Win32 = ev.Win32;
                    handshakes[key] = group;
                }
                lastGroup = group;
            }
            group.Count++;
            group.AddClient(ev.Line, ev.IpAt, ev.IpLength);
        }

        private void Expire(long offset)
        {
            while (openOrder.Count > 0)
            {
                Open401 head = openOrder.Peek();
                if (head.Settled) { openOrder.Dequeue(); continue; }
                bool closed = head.T != W3CTime.None
                    ? runningMax - head.T > settings.WindowSeconds + SlackSeconds
                    : offset - head.Offset > UntimedReachBytes;
                if (!closed) break;
                openOrder.Dequeue();
                Settle(head, false);
            }
        }

        private void Keep(long number, byte[] line)
        {
            kept.Enqueue(new KeptLine(number, line));
            keptBytes += line.Length + ExtraBytesPerLine;
            while (kept.Count > 0 && (kept.Count > settings.MaxKeptLines || keptBytes > settings.MaxKeptBytes))
            {
                KeptLine oldest = kept.Dequeue();
                keptBytes -= oldest.Bytes.Length + ExtraBytesPerLine;
                DroppedLines++;
            }
        }

        /// <summary>Bytes of the kept data lines (plus 12 per line, the old budget's measure).</summary>
        public long KeptBytes { get { return keptBytes; } }

        public int KeptLines { get { return kept.Count + directives.Count; } }

        /// <summary>The excerpt: "&lt;number&gt;TAB&lt;line&gt;LF" per kept line, in line order, directives included.</summary>
        public void WriteExcerpt(BlobBuilder blob)
        {
            List<KeptLine> all = new List<KeptLine>(kept.Count + directives.Count);
            all.AddRange(directives);
            all.AddRange(kept);
            // Stable: a directive and a data line never share a number, but keep insertion order anyway.
            KeptLine[] ordered = all.ToArray();
            long[] keys = new long[ordered.Length];
            for (int i = 0; i < ordered.Length; i++) keys[i] = ordered[i].Number * 2 + (i < directives.Count ? 0 : 1);
            Array.Sort(keys, ordered);
            byte[] tab = { (byte)'\t' }, newline = { (byte)'\n' };
            foreach (KeptLine line in ordered)
            {
                blob.Append(line.Number.ToString(System.Globalization.CultureInfo.InvariantCulture));
                blob.Append(tab, 0, 1);
                blob.Append(line.Bytes, 0, line.Bytes.Length);
                blob.Append(newline, 0, 1);
            }
        }

        // --- fields ---------------------------------------------------------------------------------

        private int fieldCount;
        private int lineEnd;
        // Consecutive lines share their date, and a busy log many lines their time: each is parsed once.
        private readonly ParsedField days = new ParsedField();
        private readonly ParsedField clocks = new ParsedField();
        private readonly StringCache codes = new StringCache();

        // The read buffer's whole 8-byte words as longs (little-endian hosts; Windows always is), refreshed
        // after every read: ScanLine tests eight bytes at a time without `unsafe` code, which Add-Type would
        // only compile with extra options. One memory copy costs far less than a BitConverter call per word.
        private long[] words = new long[BufferBytes / 8];

        private void CopyWords(byte[] buffer, int filled)
        {
            if (!BitConverter.IsLittleEndian) return;
            if (words.Length * 8 < buffer.Length) words = new long[buffer.Length / 8];
            Buffer.BlockCopy(buffer, 0, words, 0, filled & ~7);
        }

        // Finds the line's newline and records where each of its fields starts (split on single spaces, as
        // IIS writes them), in one pass over the buffer's words (CopyWords): bit tricks mark the bytes equal
        // to ' ' or '\n'; most words of a W3C line hold neither, and the marked bytes are visited directly.
        // Returns the newline's index, or -1 when the buffer ends first.
        private int ScanLine(byte[] b, int at, int end)
        {
            fieldAt[0] = at;
            int count = 1;
            int i = at;
            int word = at >> 3, lastWord = (end >> 3) - 1;  // words wholly before `end`
            if (BitConverter.IsLittleEndian && word <= lastWord)
            {
                long[] all = words;
                ulong from = ~0UL << ((at & 7) << 3);  // the first word's bytes from `at` on
                for (; word <= lastWord; word++)
                {
                    ulong value = (ulong)all[word];
                    ulong spaces = ZeroBytes(value ^ 0x2020202020202020UL) & from;
                    ulong newlines = ZeroBytes(value ^ 0x0A0A0A0A0A0A0A0AUL) & from;
                    from = ~0UL;
                    if ((spaces | newlines) == 0) continue;
                    if (newlines != 0) spaces &= (newlines & (0UL - newlines)) - 1;  // only the spaces before it
                    int first = word << 3;
                    while (spaces != 0)
                    {
                        count = AddField(count, first + LowestByte(spaces) + 1);
                        spaces &= spaces - 1;
                    }
                    if (newlines != 0)
                    {
                        fieldCount = count;
                        return first + LowestByte(newlines);
                    }
                }
                i = word << 3;
            }
            for (; i < end; i++)
            {
                byte c = b[i];
                if (c == (byte)'\n')
                {
                    fieldCount = count;
                    return i;
                }
                if (c == (byte)' ') count = AddField(count, i + 1);
            }
            fieldCount = count;
            return -1;
        }

        private int AddField(int count, int start)
        {
            if (count == fieldAt.Length) Array.Resize(ref fieldAt, fieldAt.Length * 2);
            fieldAt[count] = start;
            return count + 1;
        }

        // 0x80 in every byte of `word` that is zero, nothing elsewhere (exact: no false positives).
        private static ulong ZeroBytes(ulong word)
        {
            const ulong low7 = 0x7F7F7F7F7F7F7F7FUL;
            return ~(((word & low7) + low7) | word | low7);
        }

        // Index (0-7) of the lowest byte marked in `marks` (0x80 bits only), little-endian byte order.
        private static int LowestByte(ulong marks)
        {
            ulong lowest = marks & (0UL - marks);
            return DeBruijnBytes[(int)((lowest * 0x03F79D71B4CB0A89UL) >> 58)];
        }

        private static readonly int[] DeBruijnBytes = MakeDeBruijnBytes();

        private static int[] MakeDeBruijnBytes()
        {
            int[] table = new int[64];
            for (int bit = 0; bit < 64; bit++) table[(int)(((1UL << bit) * 0x03F79D71B4CB0A89UL) >> 58)] = bit >> 3;
            return table;
        }

        private int FieldLength(int index)
        {
            int next = index + 1 < fieldCount ? fieldAt[index + 1] - 1 : lineEnd;
            return next - fieldAt[index];
        }

        private string Field(byte[] b, int index)
        {
            return Encoding.UTF8.GetString(b, fieldAt[index], FieldLength(index));
        }

        private long TimeOf(byte[] b, W3CLayout current)
        {
            if (current.Time < 0) return W3CTime.None;
            long clock = clocks.Get(b, fieldAt[current.Time], FieldLength(current.Time), false);
            if (clock == W3CTime.None) return W3CTime.None;
            if (current.Date < 0) return clock;  // no date logged: times count from 1970-01-01, as in toolkit/logs
            long day = days.Get(b, fieldAt[current.Date], FieldLength(current.Date), true);
            return day == W3CTime.None ? W3CTime.None : day + clock;
        }

        // A headerless line must look like the layout guessed from its field count (toolkit/logs: plausible).
        private bool Plausible(byte[] b, W3CLayout guess)
        {
            if (!Shape(b, fieldAt[guess.Date], FieldLength(guess.Date), "dddd-dd-dd", false)) return false;
            if (!Shape(b, fieldAt[guess.Time], FieldLength(guess.Time), "dd:dd:dd", true)) return false;
            int[] numeric = guess.HttpErrKind ? new[] { guess.ClientPort, guess.ServerPort } : new[] { guess.Status, guess.Substatus, guess.ServerPort };
            foreach (int index in numeric)
            {
                if (index < 0) continue;
                int fieldStart = fieldAt[index], fieldLength = FieldLength(index);
                if (fieldLength == 1 && b[fieldStart] == '-') continue;
                if (fieldLength == 0) return false;
                for (int i = 0; i < fieldLength; i++) if (!IsDigit(b[fieldStart + i])) return false;
            }
            return true;
        }

        private static bool Shape(byte[] b, int at, int length, string pattern, bool fraction)
        {
            if (length < pattern.Length) return false;
            for (int i = 0; i < pattern.Length; i++)
            {
                bool digit = IsDigit(b[at + i]);
                if (pattern[i] == 'd' ? !digit : b[at + i] != pattern[i]) return false;
            }
            if (length == pattern.Length) return true;
            if (!fraction || b[at + pattern.Length] != '.' || length == pattern.Length + 1) return false;
            for (int i = pattern.Length + 1; i < length; i++) if (!IsDigit(b[at + i])) return false;
            return true;
        }

        private static bool IsDigit(byte c) { return c >= '0' && c <= '9'; }

        private bool Is401(byte[] b, int index)
        {
            int at = fieldAt[index];
            return FieldLength(index) == 3 && b[at] == '4' && b[at + 1] == '0' && b[at + 2] == '1';
        }

        // sc-win32-status fits in 32 bits: unsigned up to 4294967295 or a negative rendering down to
        // -2147483648; a value that is no decimal number ("-") is not judged (toolkit/logs: win32_fits).
        private static bool Win32Fits(byte[] b, int at, int length)
        {
            bool negative = length > 0 && b[at] == '-';
            int i = negative ? at + 1 : at, end = at + length;
            if (i >= end) return true;
            long value = 0;
            for (; i < end; i++)
            {
                if (!IsDigit(b[i])) return true;
                if (value < 100000000000L) value = value * 10 + (b[i] - '0');
            }
            return negative ? value <= 0x80000000L : value <= 0xFFFFFFFFL;
        }

        private static bool IsBlank(byte[] b, int at, int length)
        {
            for (int i = at; i < at + length; i++)
            {
                byte c = b[i];
                if (c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != '\f' && c != '\v') return false;
            }
            return true;
        }

        private static bool StartsWith(byte[] b, int at, int length, string prefix)
        {
            if (length < prefix.Length) return false;
            for (int i = 0; i < prefix.Length; i++) if (b[at + i] != prefix[i]) return false;
            return true;
        }

        private static bool Contains(byte[] b, int at, int length, string text)
        {
            for (int i = at; i + text.Length <= at + length; i++)
            {
                if (StartsWith(b, i, at + length - i, text)) return true;
            }
            return false;
        }

        private static byte[] Copy(byte[] b, int at, int length)
        {
            byte[] copy = new byte[length];
            Buffer.BlockCopy(b, at, copy, 0, length);
            return copy;
        }

        // Eight bytes at a time: user agents are long, and each answer to a 401 compares one.
        internal static bool Same(byte[] a, int aAt, int aLength, byte[] b, int bAt, int bLength)
        {
            if (aLength != bLength) return false;
            int i = 0;
            for (; i + 8 <= aLength; i += 8)
            {
                if (BitConverter.ToInt64(a, aAt + i) != BitConverter.ToInt64(b, bAt + i)) return false;
            }
            for (; i < aLength; i++) if (a[aAt + i] != b[bAt + i]) return false;
            return true;
        }

        // FNV-1a over two fields with a separator; collisions only cost a comparison (Same) per candidate.
        private static long ClientKey(byte[] b, int firstAt, int firstLength, int secondAt, int secondLength)
        {
            ulong hash = 14695981039346656037UL;
            for (int i = firstAt; i < firstAt + firstLength; i++) { hash ^= b[i]; hash *= 1099511628211UL; }
            hash ^= 0xFF;
            hash *= 1099511628211UL;
            if (secondAt >= 0)
            {
                for (int i = secondAt; i < secondAt + secondLength; i++) { hash ^= b[i]; hash *= 1099511628211UL; }
            }
            return (long)hash;
        }
    }
}
