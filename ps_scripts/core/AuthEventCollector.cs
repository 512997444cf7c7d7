// AuthEventCollector.cs: Get-AuthEventLog. Authentication events as fields (never rendered messages),
// 4624 logon-type counts, the Security and System logs' state and CrashOnAuditFail. Reading the event logs
// and the registry needs Windows, so it goes through IEventSource (WindowsEventSource in
// AuthEvents.Windows.cs; a test double under Mono). A read error in the middle of a query keeps every event
// (and every count) read before it and adds an errors[] entry.
namespace IisFleet.Target
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;

    /// <summary>One event as fields: EventData (or UserData) name/value pairs, never the rendered message.</summary>
    public sealed class EventFields
    {
        public EventFields(int id, string provider, DateTime timeUtc, long? recordId, string machine,
                           IList<KeyValuePair<string, string>> data)
        {
            Id = id;
            Provider = provider ?? "";
            TimeUtc = timeUtc;
            RecordId = recordId;
            Machine = machine ?? "";
            Data = data ?? new List<KeyValuePair<string, string>>();
        }

        public int Id { get; private set; }

        public string Provider { get; private set; }

        public DateTime TimeUtc { get; private set; }

        public long? RecordId { get; private set; }

        public string Machine { get; private set; }

        public IList<KeyValuePair<string, string>> Data { get; private set; }
    }

    /// <summary>The state of one event log.</summary>
    public sealed class EventLogState
    {
        public EventLogState(string name, long maxSizeBytes, long? fileSizeBytes, long? recordCount, bool isFull, string retention)
        {
            Name = name;
            MaxSizeBytes = maxSizeBytes;
            FileSizeBytes = fileSizeBytes;
            RecordCount = recordCount;
            IsFull = isFull;
            Retention = retention ?? "";
        }

        public string Name { get; private set; }

        public long MaxSizeBytes { get; private set; }

        public long? FileSizeBytes { get; private set; }

        public long? RecordCount { get; private set; }

        public bool IsFull { get; private set; }

        public string Retention { get; private set; }
    }

    /// <summary>Windows' event logs and the Lsa registry key, read-only.</summary>
    public interface IEventSource
    {
        /// <summary>Events of <paramref name="log"/> matching the XPath filter, newest first. Enumerating may
        /// throw part-way (access denied, a corrupt record); what was yielded before stays valid.</summary>
        IEnumerable<EventFields> Query(string log, string xpath);

        EventLogState LogState(string log);

        /// <summary>HKLM\SYSTEM\CurrentControlSet\Control\Lsa\CrashOnAuditFail, or null when unset.</summary>
        int? CrashOnAuditFail();
    }

    public static class AuthEventCollector
    {
        public const string Id = "Get-AuthEventLog";
        public const int Version = 2;

        public static string Collect(IHostContext host, IEventSource source, string since, string until, int maxEvents,
                                     int maxLogonCount)
        {
            Envelope envelope = new Envelope(Id, Version, host);
            List<ProbeError> errors = envelope.Errors;
            JsonWriter json = envelope.Begin(1 << 16);
            DateTime sinceUtc = Core.ParseSince(since, host.UtcNow);
            DateTime untilUtc = string.IsNullOrWhiteSpace(until) ? host.UtcNow : Core.ParseSince(until, host.UtcNow);
            string window = string.Format(CultureInfo.InvariantCulture, "TimeCreated[@SystemTime>='{0}' and @SystemTime<='{1}']",
                                          sinceUtc.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
                                          untilUtc.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));

            json.Name("events").BeginArray();
            WriteEvents(json, source, "Security", "security-events",
                        "*[System[(EventID=4625 or EventID=1102 or EventID=1104) and " + window + "]]", maxEvents, errors);
            WriteEvents(json, source, "System", "kerberos-events",
                        "*[System[Provider[@Name='Microsoft-Windows-Security-Kerberos' or @Name='Kerberos'] and EventID=4 and " +
                        window + "]]", maxEvents, errors);
            json.EndArray();

            json.Name("logon_counts").BeginObject()
                .Property("4624_type3", Count(source, LogonQuery(window, 3), 3, maxLogonCount, errors))
                .Property("4624_type8", Count(source, LogonQuery(window, 8), 8, maxLogonCount, errors))
                .EndObject();

            json.Name("logs").BeginArray();
            foreach (string log in new[] { "Security", "System" })
            {
                try
                {
                    EventLogState state = source.LogState(log);
                    json.BeginObject().Property("name", state.Name).Property("max_size_bytes", state.MaxSizeBytes)
                        .Property("file_size_bytes", state.FileSizeBytes).Property("record_count", state.RecordCount)
                        .Property("is_full", state.IsFull).Property("retention", state.Retention).EndObject();
                }
                catch (Exception error)
                {
                    errors.Add(Classify("log-state", log, error));
                }
            }
            json.EndArray();

            int? crash = null;
            try
            {
                crash = source.CrashOnAuditFail();
            }
            catch (Exception error)
            {
                errors.Add(Classify("crash-on-audit-fail", "HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Lsa", error));
            }
            json.Name("crash_on_audit_fail");
            if (crash.HasValue) json.Value(crash.Value); else json.Null();
            return envelope.End(json);
        }

        private static string LogonQuery(string window, int logonType)
        {
            return "*[System[EventID=4624 and " + window + "] and EventData[Data[@Name='LogonType']='" +
                   logonType.ToString(CultureInfo.InvariantCulture) + "']]";
        }

        private static void WriteEvents(JsonWriter json, IEventSource source, string log, string probe, string xpath, int maxEvents,
                                        List<ProbeError> errors)
        {
            int written = 0;
            IEnumerator<EventFields> events = null;
            try
            {
                events = source.Query(log, xpath).GetEnumerator();
                while (written < maxEvents && events.MoveNext())
                {
                    EventFields item = events.Current;
                    json.BeginObject().Property("log", log).Property("id", item.Id).Property("provider", item.Provider)
                        .Property("time_utc", item.TimeUtc).Property("record_id", item.RecordId).Property("machine", item.Machine)
                        .Name("data").BeginObject();
                    foreach (KeyValuePair<string, string> field in item.Data) json.Property(field.Key, field.Value);
                    json.EndObject().EndObject();
                    written++;
                }
                if (written >= maxEvents && events.MoveNext())
                {
                    errors.Add(new ProbeError(probe, log, "cap", "MaxEvents (" + maxEvents.ToString(CultureInfo.InvariantCulture) +
                                              ") reached; older events in the window were not read."));
                }
            }
            catch (Exception error)
            {
                // Every event written above stays: a read error costs only what was not read yet.
                ProbeError problem = Classify(probe, log, error);
                errors.Add(written == 0 ? problem : new ProbeError(problem.Probe, problem.Target, problem.Category,
                    problem.Message + " (" + written.ToString(CultureInfo.InvariantCulture) + " events read before the error are kept)"));
            }
            finally
            {
                if (events != null) events.Dispose();
            }
        }

        private static int Count(IEventSource source, string xpath, int logonType, int limit, List<ProbeError> errors)
        {
            int count = 0;
            IEnumerator<EventFields> events = null;
            try
            {
                events = source.Query("Security", xpath).GetEnumerator();
                while (count < limit && events.MoveNext()) count++;
                if (count >= limit)
                {
                    errors.Add(new ProbeError("logon-counts", "Security", "cap", "4624 type " +
                        logonType.ToString(CultureInfo.InvariantCulture) + " count stopped at MaxLogonCount (" +
                        limit.ToString(CultureInfo.InvariantCulture) + ")."));
                }
            }
            catch (Exception error)
            {
                ProbeError problem = Classify("logon-counts", "Security", error);
                errors.Add(new ProbeError(problem.Probe, problem.Target, problem.Category, problem.Message +
                    " (4624 type " + logonType.ToString(CultureInfo.InvariantCulture) + ": the count is a lower bound, " +
                    count.ToString(CultureInfo.InvariantCulture) + " counted before the error)"));
            }
            finally
            {
                if (events != null) events.Dispose();
            }
            return count;
        }

        /// <summary>Windows' event-log exceptions are Windows-only types: classify them by name here, so this
        /// file loads none of them (EventLogNotFoundException is "not-found").</summary>
        private static ProbeError Classify(string probe, string target, Exception error)
        {
            string type = error.GetType().Name;
            if (type.IndexOf("NotFound", StringComparison.Ordinal) >= 0)
            {
                return new ProbeError(probe, target, "not-found", error.Message);
            }
            return ProbeError.FromException(probe, target, error);
        }
    }
}
