// LogFiles.cs: which log files to read. Chosen by the date in the file name and by what the file's last
// lines say, never by LastWriteTime alone: NTFS updates LastWriteTime lazily for a file HTTP.sys holds
// open, so with since=1h today's log could be skipped.
namespace IisFleet.Target
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using System.IO;
    using System.Text.RegularExpressions;
    using System.Xml;

    /// <summary>One candidate log file with what its name and tail say about its time span.</summary>
    public sealed class LogFileCandidate
    {
        public FileEntry File;
        public int? SiteId;
        /// <summary>Start of the period the name says (daily/hourly/monthly logs), UTC; null for size-based names.</summary>
        public DateTime? NameStart;
        public DateTime? NameEnd;
        /// <summary>Time of the last dated data line near the end of the file (null: none found).</summary>
        public DateTime? TailTime;
        /// <summary>The folder the file was found in (files of one folder continue each other).</summary>
        public string Folder;

        /// <summary>Newest first: by the name's period, then the tail's time, then the name.</summary>
        public DateTime SortTime
        {
            get
            {
                DateTime best = NameStart.HasValue ? NameStart.Value : DateTime.MinValue;
                if (TailTime.HasValue && TailTime.Value > best) best = TailTime.Value;
                return best;
            }
        }
    }

    public static class LogFiles
    {
        public const string ServerDefaultW3C = "%SystemDrive%\\inetpub\\logs\\LogFiles";
        public const string ApplicationHostConfig = "%SystemRoot%\\System32\\inetsrv\\config\\applicationHost.config";

        // u_ex261124.log, ex261124.log (daily), u_ex26112413.log (hourly), u_ex2611.log (monthly),
        // u_ex26w47 is weekly (not dated precisely: treated as size-based).
        private static readonly Regex DatedName = new Regex("^(?:u_)?(?:ex|in|nc)(\\d{4}|\\d{6}|\\d{8})\\.log$",
            RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);
        private static readonly Regex SiteFolder = new Regex("^W3SVC(\\d+)$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

        /// <summary>The log folders applicationHost.config names: each site's logFile directory with its
        /// W3SVC&lt;id&gt; folder, the siteDefaults directory, the central W3C log directory. Never resolves
        /// external entities or DTDs.</summary>
        public static List<string> ConfiguredW3CRoots(IHostContext host, List<ProbeError> errors)
        {
            List<string> roots = new List<string>();
            string path = host.ExpandVariables(ApplicationHostConfig);
            if (!host.Files.FileExists(path))
            {
                errors.Add(new ProbeError("applicationHost.config", path, "not-installed",
                                          "applicationHost.config not found; is IIS installed?"));
                return roots;
            }
            try
            {
                XmlDocument document = new XmlDocument();
                document.XmlResolver = null;
                XmlReaderSettings settings = new XmlReaderSettings();
                settings.DtdProcessing = DtdProcessing.Prohibit;
                settings.XmlResolver = null;
                using (Stream stream = host.Files.OpenRead(path))
                using (XmlReader reader = XmlReader.Create(stream, settings))
                {
                    document.Load(reader);
                }
                string siteDefault = ServerDefaultW3C;
                XmlElement defaults = document.SelectSingleNode("/configuration/system.applicationHost/sites/siteDefaults/logFile") as XmlElement;
                if (defaults != null && defaults.GetAttribute("directory").Length > 0) siteDefault = defaults.GetAttribute("directory");
                XmlNodeList sites = document.SelectNodes("/configuration/system.applicationHost/sites/site");
                if (sites != null)
                {
                    foreach (XmlNode node in sites)
                    {
                        XmlElement site = node as XmlElement;
                        if (site == null) continue;
                        string directory = siteDefault;
                        XmlElement logFile = site.SelectSingleNode("logFile") as XmlElement;
                        if (logFile != null && logFile.GetAttribute("directory").Length > 0) directory = logFile.GetAttribute("directory");
                        roots.Add(directory.TrimEnd('\\') + "\\W3SVC" + site.GetAttribute("id"));
                    }
                }
                roots.Add(siteDefault);
                XmlElement central = document.SelectSingleNode("/configuration/system.applicationHost/log/centralW3CLogFile") as XmlElement;
                if (central != null && central.GetAttribute("directory").Length > 0) roots.Add(central.GetAttribute("directory"));
            }
            catch (Exception error)
            {
                if (error is XmlException || error is IOException || error is UnauthorizedAccessException)
                {
                    errors.Add(ProbeError.FromException("applicationHost.config", path, error));
                }
                else
                {
                    throw;
                }
            }
            return roots;
        }

        /// <summary>Every *.log file in the roots (and, with siteFolders, their W3SVC&lt;n&gt; folders) that
        /// may hold lines at or after `since`. Roots that do not exist are skipped (reported when
        /// `explicitRoots`). `searched` receives the folders that existed.</summary>
        public static List<LogFileCandidate> Discover(IHostContext host, IEnumerable<string> roots, bool siteFolders,
                                                      bool explicitRoots, DateTime since, List<string> searched,
                                                      List<ProbeError> errors)
        {
            List<LogFileCandidate> found = new List<LogFileCandidate>();
            HashSet<string> seenRoots = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            HashSet<string> seenFiles = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (string root in roots)
            {
                string expanded = host.ExpandVariables(root).TrimEnd('\\');
                if (expanded.Length == 0 || !seenRoots.Add(expanded)) continue;
                if (!host.Files.DirectoryExists(expanded))
                {
                    if (explicitRoots) errors.Add(new ProbeError("log-directory", expanded, "not-found", "Log directory does not exist."));
                    continue;
                }
                searched.Add(expanded);
                List<string> folders = new List<string>();
                folders.Add(expanded);
                try
                {
                    if (siteFolders)
                    {
                        foreach (string sub in host.Files.ListDirectories(expanded))
                        {
                            if (SiteFolder.IsMatch(LeafName(sub))) folders.Add(sub);
                        }
                    }
                }
                catch (Exception error)
                {
                    if (!IsAccessProblem(error)) throw;
                    errors.Add(ProbeError.FromException("log-directory", expanded, error));
                }
                foreach (string folder in folders)
                {
                    IList<FileEntry> files;
                    try
                    {
                        files = host.Files.ListFiles(folder);
                    }
                    catch (Exception error)
                    {
                        if (!IsAccessProblem(error)) throw;
                        errors.Add(ProbeError.FromException("log-directory", folder, error));
                        continue;
                    }
                    Match site = SiteFolder.Match(LeafName(folder));
                    foreach (FileEntry file in files)
                    {
                        if (!file.Name.EndsWith(".log", StringComparison.OrdinalIgnoreCase) || !seenFiles.Add(file.Path)) continue;
                        LogFileCandidate candidate = new LogFileCandidate();
                        candidate.File = file;
                        candidate.Folder = folder;
                        candidate.SiteId = site.Success ? ParseSiteId(site.Groups[1].Value) : null;
                        NamePeriod(file.Name, out candidate.NameStart, out candidate.NameEnd);
                        // A name period that ended more than a day before `since` cannot hold newer lines
                        // (a day of slack: with localTimeRollover the name is the local date).
                        if (candidate.NameEnd.HasValue && candidate.NameEnd.Value.AddDays(1) < since) continue;
                        if (file.Length == 0) continue;
                        try
                        {
                            candidate.TailTime = TailTime(host.Files, file.Path);
                        }
                        catch (Exception error)
                        {
                            if (!IsAccessProblem(error)) throw;
                            errors.Add(ProbeError.FromException("log-file", file.Path, error));
                            continue;
                        }
                        // The last dated line is older than the window: nothing in this file is new.
                        if (candidate.TailTime.HasValue && candidate.TailTime.Value < since) continue;
                        found.Add(candidate);
                    }
                }
            }
            found.Sort(delegate(LogFileCandidate a, LogFileCandidate b)
            {
                int byTime = b.SortTime.CompareTo(a.SortTime);
                return byTime != 0 ? byTime : string.Compare(b.File.Path, a.File.Path, StringComparison.OrdinalIgnoreCase);
            });
            return found;
        }

        /// <summary>Exceptions that concern one folder or file; anything else is a bug and propagates.</summary>
        public static bool IsAccessProblem(Exception error)
        {
            return error is IOException || error is UnauthorizedAccessException || error is System.Security.SecurityException;
        }

        public static string LeafName(string path)
        {
            string trimmed = path.TrimEnd('\\', '/');
            int cut = trimmed.LastIndexOfAny(new[] { '\\', '/' });
            return cut < 0 ? trimmed : trimmed.Substring(cut + 1);
        }

        private static int? ParseSiteId(string digits)
        {
            int id;
            return int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out id) ? id : (int?)null;
        }

        /// <summary>The period a dated log name covers: exYYMM (month), exYYMMDD (day), exYYMMDDHH (hour).</summary>
        public static void NamePeriod(string name, out DateTime? start, out DateTime? end)
        {
            start = null;
            end = null;
            Match match = DatedName.Match(name);
            if (!match.Success) return;
            string digits = match.Groups[1].Value;
            int year = 2000 + int.Parse(digits.Substring(0, 2), CultureInfo.InvariantCulture);
            int month = int.Parse(digits.Substring(2, 2), CultureInfo.InvariantCulture);
            if (month < 1 || month > 12) return;
            if (digits.Length == 4)
            {
                start = new DateTime(year, month, 1, 0, 0, 0, DateTimeKind.Utc);
                end = start.Value.AddMonths(1);
                return;
            }
            int day = int.Parse(digits.Substring(4, 2), CultureInfo.InvariantCulture);
            if (day < 1 || day > DateTime.DaysInMonth(year, month)) return;
            start = new DateTime(year, month, day, 0, 0, 0, DateTimeKind.Utc);
            end = start.Value.AddDays(1);
            if (digits.Length == 8)
            {
                int hour = int.Parse(digits.Substring(6, 2), CultureInfo.InvariantCulture);
                if (hour > 23) { start = null; end = null; return; }
                start = start.Value.AddHours(hour);
                end = start.Value.AddHours(1);
            }
        }

        /// <summary>The time of the last dated line in the last 64 KiB of the file (null when none).</summary>
        public static DateTime? TailTime(IFileSystem files, string path)
        {
            using (Stream stream = files.OpenRead(path))
            {
                long length = stream.Length;
                int size = (int)Math.Min(length, 65536);
                stream.Seek(length - size, SeekOrigin.Begin);
                byte[] tail = new byte[size];
                int read = 0;
                while (read < size)
                {
                    int n = stream.Read(tail, read, size - read);
                    if (n <= 0) break;
                    read += n;
                }
                int end = read;
                while (end > 0)
                {
                    int start = end - 1;
                    while (start > 0 && tail[start - 1] != (byte)'\n') start--;
                    if (start == 0 && size < length) break;  // the first line of the tail may be cut
                    long t = W3CTime.LeadingStamp(tail, start, end - start);
                    if (t != W3CTime.None) return W3CTime.ToDateTime(t);
                    end = start;
                    if (end > 0) end--;  // step over the newline
                }
                return null;
            }
        }
    }
}
