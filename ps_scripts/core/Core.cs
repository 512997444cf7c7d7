// Core.cs: identity of the compiled core and the envelope every entry point returns.
namespace IisFleet.Target
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using System.IO;
    using System.Security;

    /// <summary>The core's identity. `Version` (a SHA-256 prefix of the source) is generated into the
    /// source text by toolkit/targetcore when it is assembled, so a loader can tell whether the type
    /// already loaded in a runspace is this exact source.</summary>
    public static partial class Core
    {
        public const string Schema = "iisfleet.collector/1";

        /// <summary>A collector's Since/Until parameter (ISO 8601, UTC when no zone); empty: 24 hours before
        /// `now`. Here, not in one collector, so a collector that needs only this does not need that
        /// collector's file too (toolkit/targetcore/closure.py sends a session only the files it needs).</summary>
        internal static DateTime ParseSince(string since, DateTime now)
        {
            if (string.IsNullOrWhiteSpace(since)) return now.AddHours(-24);
            return DateTime.Parse(since, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal);
        }
    }

    /// <summary>One entry of an envelope's errors[]: a failed sub-probe, a cap, a skipped file.</summary>
    public sealed class ProbeError
    {
        public ProbeError(string probe, string target, string category, string message)
        {
            Probe = probe ?? "";
            Target = target ?? "";
            Category = category ?? "other";
            Message = message ?? "";
        }

        public string Probe { get; private set; }

        public string Target { get; private set; }

        /// <summary>access-denied, not-found, io, cap, parse, environment, other (docs/contracts.md).</summary>
        public string Category { get; private set; }

        public string Message { get; private set; }

        /// <summary>The category an exception belongs to, the same mapping on every collector.</summary>
        public static ProbeError FromException(string probe, string target, Exception error)
        {
            string category = "other";
            if (error is UnauthorizedAccessException || error is SecurityException) category = "access-denied";
            else if (error is FileNotFoundException || error is DirectoryNotFoundException) category = "not-found";
            else if (error is IOException) category = "io";
            return new ProbeError(probe, target, category, error.Message);
        }
    }

    /// <summary>Writes one envelope: {"schema","collector","version","host","time_utc","data","errors"}.
    /// The caller writes the data object's members between Begin and End.</summary>
    public sealed class Envelope
    {
        private readonly List<ProbeError> errors = new List<ProbeError>();
        private readonly string collector;
        private readonly int version;
        private readonly IHostContext host;

        public Envelope(string collector, int version, IHostContext host)
        {
            this.collector = collector;
            this.version = version;
            this.host = host;
        }

        public List<ProbeError> Errors { get { return errors; } }

        /// <summary>Starts the document and opens "data"; write its members, then call End.</summary>
        public JsonWriter Begin(int initialCapacity)
        {
            JsonWriter json = new JsonWriter(JsonWriter.DefaultMaxStringChars, initialCapacity);
            json.BeginObject()
                .Property("schema", Core.Schema)
                .Property("collector", collector)
                .Property("version", version)
                .Property("host", host.ComputerName)
                .Property("time_utc", host.UtcNow)
                .Name("data").BeginObject();
            return json;
        }

        /// <summary>Closes "data", writes errors[] and returns the text.</summary>
        public string End(JsonWriter json)
        {
            return End(json, -1, true);
        }

        /// <summary>Closes "data", writes errors[] and, for a collector that streams (partIndex 0, 1, ...),
        /// "part": {"index": n, "final": bool} (docs/contracts.md 1.4); returns the text.</summary>
        public string End(JsonWriter json, int partIndex, bool final)
        {
            json.EndObject().Name("errors").BeginArray();
            foreach (ProbeError error in errors)
            {
                json.BeginObject()
                    .Property("probe", error.Probe)
                    .Property("target", error.Target)
                    .Property("category", error.Category)
                    .Property("message", error.Message)
                    .EndObject();
            }
            json.EndArray();
            if (partIndex >= 0)
            {
                json.Name("part").BeginObject().Property("index", partIndex).Property("final", final).EndObject();
            }
            json.EndObject();
            return json.ToString();
        }
    }
}
