// SpnCollector.cs: Get-IisSpn. "setspn -L" for the machine account and for every application pool that runs
// as a specific user (identity read from applicationHost.config, applicationPoolDefaults inherited), each
// account once. The raw output is returned; it is parsed on the controller by structure (it is localized).
// Starting setspn.exe needs Windows: it goes through ISpnLister (SetspnLister in Spn.Windows.cs; a double
// under Mono).
namespace IisFleet.Target
{
    using System;
    using System.Collections.Generic;
    using System.Xml;

    /// <summary>What one "setspn -L &lt;account&gt;" printed, and its exit code.</summary>
    public sealed class SpnListing
    {
        public SpnListing(int exitCode, string output)
        {
            ExitCode = exitCode;
            Output = output ?? "";
        }

        public int ExitCode { get; private set; }

        public string Output { get; private set; }
    }

    public interface ISpnLister
    {
        /// <summary>Runs "setspn -L &lt;account&gt;" (a read: it only lists). Throws when setspn cannot be started.</summary>
        SpnListing List(string account);
    }

    public static class SpnCollector
    {
        public const string Id = "Get-IisSpn";
        public const int Version = 2;

        public static string Collect(IHostContext host, ISpnLister lister)
        {
            Envelope envelope = new Envelope(Id, Version, host);
            List<ProbeError> errors = envelope.Errors;
            JsonWriter json = envelope.Begin(1 << 12);
            json.Property("machine_account", host.ComputerName + "$").Name("queries").BeginArray();
            Dictionary<string, SpnListing> done = new Dictionary<string, SpnListing>(StringComparer.OrdinalIgnoreCase);
            // setspn resolves a bare computer name to the computer account (DOMAIN\NAME$).
            Query(json, lister, host.ComputerName, "machine", done, errors);
            foreach (KeyValuePair<string, string> pool in PoolAccounts(host, errors))
            {
                Query(json, lister, pool.Value, "app-pool:" + pool.Key, done, errors);
            }
            json.EndArray();
            return envelope.End(json);
        }

        private static void Query(JsonWriter json, ISpnLister lister, string account, string source,
                                  Dictionary<string, SpnListing> done, List<ProbeError> errors)
        {
            SpnListing listing;
            if (!done.TryGetValue(account, out listing))
            {
                try
                {
                    listing = lister.List(account);
                }
                catch (Exception error)
                {
                    if (!(error is InvalidOperationException || error is System.ComponentModel.Win32Exception ||
                          error is System.IO.IOException || error is UnauthorizedAccessException)) throw;
                    errors.Add(ProbeError.FromException("setspn", account, error));
                    return;
                }
                done[account] = listing;  // the same account is never queried twice
            }
            json.BeginObject().Property("account", account).Property("source", source)
                .Property("command", "setspn -L " + account).Property("exit_code", listing.ExitCode)
                .Property("output", listing.Output).EndObject();
        }

        /// <summary>(pool name, account) of every pool whose identity is SpecificUser with a user name.</summary>
        internal static List<KeyValuePair<string, string>> PoolAccounts(IHostContext host, List<ProbeError> errors)
        {
            List<KeyValuePair<string, string>> pools = new List<KeyValuePair<string, string>>();
            string path = host.ExpandVariables("%SystemRoot%\\System32\\inetsrv\\config\\applicationHost.config");
            byte[] appHost = ConfigCollector.ReadWhole(host.Files, path, ConfigCollector.MaxApplicationHostBytes,
                                                       "applicationHost.config", errors);
            if (appHost == null)
            {
                if (!errors.Exists(delegate(ProbeError e) { return e.Probe == "applicationHost.config"; }))
                {
                    errors.Add(new ProbeError("applicationHost.config", path, "not-installed",
                                              "applicationHost.config not found; is IIS installed?"));
                }
                return pools;
            }
            XmlDocument document;
            try
            {
                document = ConfigCollector.LoadXml(appHost);
            }
            catch (XmlException error)
            {
                errors.Add(new ProbeError("applicationHost.config", path, "other", "Cannot parse the file: " + error.Message));
                return pools;
            }
            string defaultType = "ApplicationPoolIdentity";
            string defaultUser = "";
            XmlElement defaults = document.SelectSingleNode(
                "/configuration/system.applicationHost/applicationPools/applicationPoolDefaults/processModel") as XmlElement;
            if (defaults != null)
            {
                if (defaults.HasAttribute("identityType")) defaultType = defaults.GetAttribute("identityType");
                defaultUser = defaults.GetAttribute("userName");
            }
            foreach (XmlNode node in document.SelectNodes("/configuration/system.applicationHost/applicationPools/add"))
            {
                XmlElement pool = (XmlElement)node;
                string identityType = defaultType;
                string account = defaultUser;
                XmlElement processModel = pool["processModel"];
                if (processModel != null)
                {
                    if (processModel.HasAttribute("identityType")) identityType = processModel.GetAttribute("identityType");
                    if (processModel.HasAttribute("userName")) account = processModel.GetAttribute("userName");
                }
                if (identityType != "SpecificUser" || account.Length == 0) continue;
                pools.Add(new KeyValuePair<string, string>(pool.GetAttribute("name"), account));
            }
            return pools;
        }
    }
}
