// AuthEvents.Windows.cs: the only Get-AuthEventLog code that needs Windows (EventLogReader, the event-log
// configuration and the registry). Compiled everywhere, run only on a host: under Mono a test double
// implements IEventSource. Events are read with EventLogReader and turned into fields from their XML
// (ToXml); FormatDescription (the rendered message, the slow part of Get-WinEvent) is never called.
namespace IisFleet.Target
{
    using System;
    using System.Collections.Generic;
    using System.Diagnostics.Eventing.Reader;
    using System.IO;
    using System.Xml;
    using Microsoft.Win32;

    public sealed class WindowsEventSource : IEventSource
    {
        public IEnumerable<EventFields> Query(string log, string xpath)
        {
            return new RecordStream(log, xpath);
        }

        /// <summary>Streams a query's records, newest first, disposing each. Not an iterator method: the class
        /// the compiler would generate has fields of EventLog* types, and a type whose field types do not exist
        /// cannot even be loaded under Mono, where the lab's harness enumerates the core's types. Fields are
        /// typed object; the Windows types are touched only inside methods, which run only on a host.</summary>
        private sealed class RecordStream : IEnumerable<EventFields>, IEnumerator<EventFields>
        {
            private readonly string log;
            private readonly string xpath;
            private object reader;  // EventLogReader
            private EventFields current;

            public RecordStream(string log, string xpath)
            {
                this.log = log;
                this.xpath = xpath;
            }

            public EventFields Current { get { return current; } }

            object System.Collections.IEnumerator.Current { get { return current; } }

            public IEnumerator<EventFields> GetEnumerator() { return this; }

            System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() { return this; }

            public bool MoveNext()
            {
                if (reader == null)
                {
                    EventLogQuery query = new EventLogQuery(log, PathType.LogName, xpath);
                    query.ReverseDirection = true;  // newest first
                    reader = new EventLogReader(query);
                }
                using (EventRecord record = ((EventLogReader)reader).ReadEvent())
                {
                    if (record == null) return false;
                    DateTime created = record.TimeCreated.HasValue ? record.TimeCreated.Value.ToUniversalTime() : DateTime.MinValue;
                    current = new EventFields(record.Id, record.ProviderName, created, record.RecordId, record.MachineName,
                                              Fields(record.ToXml()));
                    return true;
                }
            }

            public void Reset() { throw new NotSupportedException(); }

            public void Dispose()
            {
                IDisposable disposable = reader as IDisposable;
                if (disposable != null) disposable.Dispose();
                reader = null;
            }
        }

        /// <summary>EventData/Data (by Name, else Data0, Data1...) and UserData/*/* pairs of an event's XML.</summary>
        internal static IList<KeyValuePair<string, string>> Fields(string xml)
        {
            List<KeyValuePair<string, string>> fields = new List<KeyValuePair<string, string>>();
            XmlReaderSettings settings = new XmlReaderSettings();
            settings.DtdProcessing = DtdProcessing.Prohibit;
            settings.XmlResolver = null;
            XmlDocument document = new XmlDocument();
            document.XmlResolver = null;
            using (XmlReader reader = XmlReader.Create(new StringReader(xml), settings)) document.Load(reader);
            int index = 0;
            foreach (XmlNode node in document.SelectNodes("/*[local-name()='Event']/*[local-name()='EventData']/*[local-name()='Data']"))
            {
                XmlElement element = (XmlElement)node;
                string name = element.GetAttribute("Name");
                fields.Add(new KeyValuePair<string, string>(name.Length > 0 ? name : "Data" + index, element.InnerText));
                index++;
            }
            foreach (XmlNode node in document.SelectNodes("/*[local-name()='Event']/*[local-name()='UserData']/*/*"))
            {
                fields.Add(new KeyValuePair<string, string>(node.LocalName, node.InnerText));
            }
            return fields;
        }

        public EventLogState LogState(string log)
        {
            using (EventLogConfiguration configuration = new EventLogConfiguration(log))
            {
                EventLogInformation information = EventLogSession.GlobalSession.GetLogInformation(log, PathType.LogName);
                return new EventLogState(configuration.LogName, configuration.MaximumSizeInBytes, information.FileSize,
                                         information.RecordCount, information.IsLogFull.GetValueOrDefault(),
                                         configuration.LogMode.ToString());
            }
        }

        public int? CrashOnAuditFail()
        {
            using (RegistryKey key = Registry.LocalMachine.OpenSubKey("SYSTEM\\CurrentControlSet\\Control\\Lsa", false))
            {
                object value = key == null ? null : key.GetValue("CrashOnAuditFail");
                return value == null ? (int?)null : Convert.ToInt32(value, System.Globalization.CultureInfo.InvariantCulture);
            }
        }
    }

    public static partial class WindowsCollectors
    {
        public static string AuthEvents(string since, string until, int maxEvents, int maxLogonCount)
        {
            return AuthEventCollector.Collect(LocalHost.Instance, new WindowsEventSource(), since, until, maxEvents, maxLogonCount);
        }
    }
}
