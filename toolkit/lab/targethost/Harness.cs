// Harness.cs (lab harness only): one long-lived Mono process per lab server. It reads one JSON request
// per line on stdin and answers with JSON lines on stdout, so the lab's answers come from the core that
// runs on Windows. Protocol (toolkit/lab/model/corehost.py is the other side):
//   {"id":1,"op":"ping"}  ->  {"id":1,"version":"<Core.Version>","collectors":[...]} {"id":1,"end":true}
//   {"id":2,"op":"run","collector":"Get-IisW3CLog","parameters":{...},
//    "host":{"computer_name":"WEB01","utc_now":"2026-11-24T21:00:00Z","mounts":[["C:\\","/fleet/web01/files/C"]],
//            "variables":{"SystemDrive":"C:"}}}
//     -> {"id":2,"output":"<envelope>"} (one per output object, as soon as it is produced) ... {"id":2,"end":true}
//   A failure is {"id":n,"error":"<message>","type":"<exception type>"} before the end line: the PowerShell
//   wrapper would have turned it into a terminating error.
namespace IisFleet.Lab
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using System.IO;
    using System.Text;
    using IisFleet.Target;

    public static class Harness
    {
        private static readonly Dictionary<string, ILabEntry> Entries = FindEntries();

        public static int Main()
        {
            UTF8Encoding utf8 = new UTF8Encoding(false);
            using (StreamReader input = new StreamReader(Console.OpenStandardInput(), utf8))
            using (StreamWriter output = new StreamWriter(Console.OpenStandardOutput(), utf8))
            {
                output.NewLine = "\n";
                string line;
                while ((line = input.ReadLine()) != null)
                {
                    if (line.Trim().Length == 0) continue;
                    Serve(line, output);
                }
            }
            return 0;
        }

        private static void Serve(string line, StreamWriter output)
        {
            long id = 0;
            try
            {
                Dictionary<string, object> request = (Dictionary<string, object>)JsonReader.Parse(line);
                id = Convert.ToInt64(request["id"], CultureInfo.InvariantCulture);
                string op = (string)request["op"];
                if (op == "ping")
                {
                    JsonWriter json = new JsonWriter();
                    json.BeginObject().Property("id", id).Property("version", Core.Version)
                        .StringArray("collectors", Entries.Keys).EndObject();
                    Send(output, json.ToString());
                }
                else if (op == "run")
                {
                    Run(id, request, output);
                }
                else
                {
                    throw new ArgumentException("unknown op '" + op + "'");
                }
            }
            catch (Exception error)
            {
                Exception inner = error;
                while (inner is System.Reflection.TargetInvocationException && inner.InnerException != null) inner = inner.InnerException;
                JsonWriter json = new JsonWriter();
                json.BeginObject().Property("id", id).Property("error", inner.Message)
                    .Property("type", inner.GetType().FullName).EndObject();
                Send(output, json.ToString());
            }
            JsonWriter end = new JsonWriter();
            Send(output, end.BeginObject().Property("id", id).Property("end", true).EndObject().ToString());
        }

        private static void Run(long id, Dictionary<string, object> request, StreamWriter output)
        {
            string collector = (string)request["collector"];
            ILabEntry entry;
            if (!Entries.TryGetValue(collector, out entry))
            {
                throw new ArgumentException("the lab harness has no core entry point for '" + collector + "'");
            }
            LabHost host = MakeHost((Dictionary<string, object>)request["host"]);
            object parameters;
            request.TryGetValue("parameters", out parameters);
            foreach (string part in entry.Run(host, new LabParameters(parameters as Dictionary<string, object>)))
            {
                JsonWriter json = new JsonWriter(int.MaxValue, part.Length + 64);
                Send(output, json.BeginObject().Property("id", id).Property("output", part).EndObject().ToString());
            }
        }

        private static LabHost MakeHost(Dictionary<string, object> spec)
        {
            List<KeyValuePair<string, string>> mounts = new List<KeyValuePair<string, string>>();
            foreach (object mount in (List<object>)spec["mounts"])
            {
                List<object> pair = (List<object>)mount;
                mounts.Add(new KeyValuePair<string, string>((string)pair[0], (string)pair[1]));
            }
            Dictionary<string, string> variables = new Dictionary<string, string>();
            object raw;
            if (spec.TryGetValue("variables", out raw) && raw != null)
            {
                foreach (KeyValuePair<string, object> variable in (Dictionary<string, object>)raw) variables[variable.Key] = (string)variable.Value;
            }
            DateTime now = DateTime.ParseExact((string)spec["utc_now"], "yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture,
                                               DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal);
            return new LabHost((string)spec["computer_name"], now, new MappedFileSystem(mounts), variables);
        }

        private static void Send(StreamWriter output, string line)
        {
            output.WriteLine(line);
            output.Flush();
        }

        private static Dictionary<string, ILabEntry> FindEntries()
        {
            Dictionary<string, ILabEntry> entries = new Dictionary<string, ILabEntry>(StringComparer.OrdinalIgnoreCase);
            foreach (Type type in typeof(Harness).Assembly.GetTypes())
            {
                if (type.IsAbstract || type.IsInterface || !typeof(ILabEntry).IsAssignableFrom(type)) continue;
                ILabEntry entry = (ILabEntry)Activator.CreateInstance(type);
                entries.Add(entry.CollectorId, entry);
            }
            return entries;
        }
    }
}
