// EventSources.cs (tests only): an IEventSource double for Get-AuthEventLog's core under Mono. Events come
// from the parameters as "log|id|provider|time|record|machine|name=value;name=value" lines; the XPath filter
// is matched crudely (event ids, and the logon type for the 4624 counts), enough to drive the collector.
namespace IisFleet.Lab.Tests
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using System.Text.RegularExpressions;
    using IisFleet.Lab;
    using IisFleet.Target;

    public sealed class ListEventSource : IEventSource
    {
        private readonly List<KeyValuePair<string, EventFields>> events = new List<KeyValuePair<string, EventFields>>();
        private readonly int failAfter;
        private readonly bool denyLogState;

        public ListEventSource(string[] lines, int failAfter, bool denyLogState)
        {
            this.failAfter = failAfter;
            this.denyLogState = denyLogState;
            foreach (string line in lines)
            {
                string[] part = line.Split('|');
                List<KeyValuePair<string, string>> data = new List<KeyValuePair<string, string>>();
                foreach (string pair in part[6].Split(new[] { ';' }, StringSplitOptions.RemoveEmptyEntries))
                {
                    int eq = pair.IndexOf('=');
                    data.Add(new KeyValuePair<string, string>(pair.Substring(0, eq), pair.Substring(eq + 1)));
                }
                DateTime time = DateTime.Parse(part[3], CultureInfo.InvariantCulture,
                                               DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal);
                events.Add(new KeyValuePair<string, EventFields>(part[0], new EventFields(
                    int.Parse(part[1], CultureInfo.InvariantCulture), part[2], time,
                    long.Parse(part[4], CultureInfo.InvariantCulture), part[5], data)));
            }
        }

        public IEnumerable<EventFields> Query(string log, string xpath)
        {
            List<int> ids = new List<int>();
            foreach (Match id in Regex.Matches(xpath, "EventID=(\\d+)")) ids.Add(int.Parse(id.Groups[1].Value, CultureInfo.InvariantCulture));
            Match logonType = Regex.Match(xpath, "'LogonType'\\]='(\\d+)'");
            int yielded = 0;
            foreach (KeyValuePair<string, EventFields> entry in events)
            {
                if (entry.Key != log || !ids.Contains(entry.Value.Id)) continue;
                if (logonType.Success && !HasField(entry.Value, "LogonType", logonType.Groups[1].Value)) continue;
                if (failAfter >= 0 && yielded == failAfter)
                {
                    throw new UnauthorizedAccessException("Attempted to perform an unauthorized operation.");
                }
                yielded++;
                yield return entry.Value;
            }
        }

        private static bool HasField(EventFields item, string name, string value)
        {
            foreach (KeyValuePair<string, string> field in item.Data) if (field.Key == name && field.Value == value) return true;
            return false;
        }

        public EventLogState LogState(string log)
        {
            if (denyLogState && log == "Security") throw new UnauthorizedAccessException("Attempted to perform an unauthorized operation.");
            return new EventLogState(log, 20971520, 69632, 12, false, "Circular");
        }

        public int? CrashOnAuditFail() { return 0; }
    }

    public sealed class AuthEventsFromList : ILabEntry
    {
        public string CollectorId { get { return "Test-AuthEvents"; } }

        public IEnumerable<string> Run(IHostContext host, LabParameters parameters)
        {
            ListEventSource source = new ListEventSource(parameters.Strings("Events"), parameters.Int("FailAfter", -1),
                                                         parameters.String("DenyLogState", "") == "True");
            yield return AuthEventCollector.Collect(host, source, parameters.String("Since", ""), parameters.String("Until", ""),
                                                    parameters.Int("MaxEvents", 500), parameters.Int("MaxLogonCount", 20000));
        }
    }
}

namespace IisFleet.Lab.Tests
{
    using System;
    using System.Collections.Generic;
    using IisFleet.Lab;
    using IisFleet.Target;

    /// <summary>setspn -L answers from the parameters: "account|exit code|output" lines; "FAIL" as the exit code
    /// throws as a setspn that cannot be started would. Records every account asked.</summary>
    public sealed class ListSpnLister : ISpnLister
    {
        private readonly Dictionary<string, string[]> answers = new Dictionary<string, string[]>(StringComparer.OrdinalIgnoreCase);

        public ListSpnLister(string[] lines)
        {
            Asked = new List<string>();
            foreach (string line in lines) { string[] part = line.Split(new[] { '|' }, 3); answers[part[0]] = part; }
        }

        public List<string> Asked { get; private set; }

        public SpnListing List(string account)
        {
            Asked.Add(account);
            string[] answer;
            if (!answers.TryGetValue(account, out answer)) return new SpnListing(1, "FindDomainForAccount: failed");
            if (answer[1] == "FAIL") throw new System.ComponentModel.Win32Exception(2, "The system cannot find the file specified");
            return new SpnListing(int.Parse(answer[1], System.Globalization.CultureInfo.InvariantCulture), answer[2].Replace("\\n", "\n"));
        }
    }

    public sealed class SpnFromList : ILabEntry
    {
        public string CollectorId { get { return "Test-Spn"; } }

        public IEnumerable<string> Run(IHostContext host, LabParameters parameters)
        {
            ListSpnLister lister = new ListSpnLister(parameters.Strings("Listings"));
            yield return SpnCollector.Collect(host, lister);
            JsonWriter json = new JsonWriter();
            yield return json.BeginObject().StringArray("asked", lister.Asked).EndObject().ToString();
        }
    }
}
