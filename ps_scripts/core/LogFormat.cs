// LogFormat.cs: W3C/HTTPERR layouts (#Fields) and times, read from bytes exactly as toolkit/logs reads them.
namespace IisFleet.Target
{
    using System;
    using System.Collections.Generic;
    using System.Text;

    /// <summary>Times as seconds since 1970-01-01 UTC; `None` when a date or time cannot be read.</summary>
    public static class W3CTime
    {
        public const long None = long.MinValue;
        private static readonly DateTime Epoch = new DateTime(1970, 1, 1, 0, 0, 0, DateTimeKind.Utc);

        public static DateTime ToDateTime(long seconds) { return Epoch.AddSeconds(seconds); }

        public static long FromDateTime(DateTime utc) { return (long)(utc - Epoch).TotalSeconds; }

        /// <summary>Seconds of the day `date` (yyyy-mm-dd: fields [0:4], [5:7], [8:10] read as numbers,
        /// as toolkit/logs does), or None.</summary>
        public static long Day(byte[] b, int at, int length)
        {
            int year = Number(b, at, length, 0, 4), month = Number(b, at, length, 5, 7), day = Number(b, at, length, 8, 10);
            if (year < 1 || year > 9999 || month < 1 || month > 12 || day < 1 || day > DateTime.DaysInMonth(year, month)) return None;
            return (long)(new DateTime(year, month, day, 0, 0, 0, DateTimeKind.Utc) - Epoch).TotalSeconds;
        }

        /// <summary>Seconds into the day of hh:mm:ss (anything after the 8th byte ignored), or None.</summary>
        public static long Clock(byte[] b, int at, int length)
        {
            int hours = Number(b, at, length, 0, 2), minutes = Number(b, at, length, 3, 5), seconds = Number(b, at, length, 6, 8);
            if (hours < 0 || hours > 23 || minutes < 0 || minutes > 59 || seconds < 0 || seconds > 59) return None;
            return hours * 3600 + minutes * 60 + seconds;
        }

        /// <summary>The time of a line that starts "yyyy-mm-dd hh:mm:ss" (the IIS field order), or None.</summary>
        public static long LeadingStamp(byte[] b, int at, int length)
        {
            int space = Array.IndexOf(b, (byte)' ', at, length);
            if (space < 0 || b[at] == (byte)'#') return None;
            int next = Array.IndexOf(b, (byte)' ', space + 1, at + length - space - 1);
            int clockLength = (next < 0 ? at + length : next) - space - 1;
            long day = Day(b, at, space - at);
            long clock = Clock(b, space + 1, clockLength);
            return day == None || clock == None ? None : day + clock;
        }

        // Python's int() of the slice [from:to] of a field: optional surrounding blanks and sign, then digits.
        // -1 when it is no number (every caller rejects negative values anyway).
        private static int Number(byte[] b, int at, int length, int from, int to)
        {
            if (to > length) to = length;
            int i = at + from, end = at + to;
            while (i < end && (b[i] == ' ' || b[i] == '\t')) i++;
            while (end > i && (b[end - 1] == ' ' || b[end - 1] == '\t')) end--;
            if (i < end && b[i] == '+') i++;
            if (i >= end) return -1;
            int value = 0;
            for (; i < end; i++)
            {
                int digit = b[i] - '0';
                if (digit < 0 || digit > 9 || value > 100000) return -1;
                value = value * 10 + digit;
            }
            return value;
        }
    }

    /// <summary>One #Fields directive: field names and the positions the 401 analysis needs (-1 = not logged).</summary>
    public sealed class W3CLayout
    {
        /// <summary>IIS 7+ default W3C field set (headerless lines with exactly this many fields).</summary>
        public static readonly W3CLayout DefaultW3C = FromNames("date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken", true, false);
        /// <summary>Every standard IIS 8.5+ W3C field in IIS order (headerless lines with 22 fields).</summary>
        public static readonly W3CLayout FullW3C = FromNames("date time s-sitename s-computername s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs-version cs(User-Agent) cs(Cookie) cs(Referer) cs-host sc-status sc-substatus sc-win32-status sc-bytes cs-bytes time-taken", true, false);
        /// <summary>HTTP.sys error log fields (headerless HTTPERR lines with 13 fields).</summary>
        public static readonly W3CLayout HttpErr = FromNames("date time c-ip c-port s-ip s-port cs-version cs-method cs-uri sc-status s-siteid s-reason s-queuename", true, true);

        public int Width;
        public bool Inferred;
        public bool HttpErrKind;
        public int Date = -1, Time = -1, ClientIp = -1, Stem = -1, Status = -1, Substatus = -1, Win32 = -1,
                   UserAgent = -1, User = -1, SiteName = -1, ComputerName = -1, ClientPort = -1, ServerPort = -1;

        /// <summary>Whether the 401 analysis can read this layout (a W3C layout with the fields it needs).</summary>
        public bool Classifiable
        {
            get { return !HttpErrKind && ClientIp >= 0 && Stem >= 0 && Status >= 0; }
        }

        /// <summary>Parses "#Fields: a b c" (a trailing "// comment" is not a field); null when it lists none.</summary>
        public static W3CLayout FromDirective(byte[] b, int at, int length, bool httpErrFile)
        {
            string text = Encoding.GetEncoding(28591).GetString(b, at, length);  // latin-1, as toolkit/logs reads names
            int colon = text.IndexOf(':');
            string names = colon < 0 ? "" : text.Substring(colon + 1);
            int comment = (" " + names + " ").IndexOf(" // ", StringComparison.Ordinal);
            if (comment >= 0) names = names.Substring(0, Math.Max(0, comment - 1));
            W3CLayout layout = FromNames(names, false, false);
            if (layout == null) return null;
            if (httpErrFile) layout.HttpErrKind = true;
            return layout;
        }

        private static W3CLayout FromNames(string names, bool inferred, bool httpErr)
        {
            string[] parts = names.Split(new[] { ' ', '\t', '\r', '\n', '\f', '\v' }, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 0) return null;
            W3CLayout layout = new W3CLayout();
            layout.Width = parts.Length;
            layout.Inferred = inferred;
            Dictionary<string, int> index = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int i = 0; i < parts.Length; i++)
            {
                string name = parts[i].ToLowerInvariant();
                if (!index.ContainsKey(name)) index[name] = i;
            }
            layout.HttpErrKind = httpErr || index.ContainsKey("s-reason") || index.ContainsKey("s-queuename");
            layout.Date = Find(index, "date");
            layout.Time = Find(index, "time");
            layout.ClientIp = Find(index, "c-ip");
            layout.Stem = Find(index, "cs-uri-stem");
            layout.Status = Find(index, "sc-status");
            layout.Substatus = Find(index, "sc-substatus");
            layout.Win32 = Find(index, "sc-win32-status");
            layout.UserAgent = Find(index, "cs(user-agent)");
            layout.User = Find(index, "cs-username");
            layout.SiteName = Find(index, "s-sitename");
            layout.ComputerName = Find(index, "s-computername");
            layout.ClientPort = Find(index, "c-port");
            layout.ServerPort = Find(index, "s-port");
            return layout;
        }

        private static int Find(Dictionary<string, int> index, string name)
        {
            int i;
            return index.TryGetValue(name, out i) ? i : -1;
        }

        /// <summary>The documented layout with this many fields, for lines before any #Fields.</summary>
        public static W3CLayout ForFieldCount(int fields)
        {
            if (fields == DefaultW3C.Width) return DefaultW3C;
            if (fields == FullW3C.Width) return FullW3C;
            if (fields == HttpErr.Width) return HttpErr;
            return null;
        }
    }
}
