// Json.cs: the core's one JSON writer. Every envelope leaves the host through it, so it never depends on
// ConvertTo-Json (depth limit, one-element arrays unrolled, culture-dependent numbers).
namespace IisFleet.Target
{
    using System;
    using System.Globalization;
    using System.Text;

    /// <summary>Writes compact JSON into a StringBuilder. Strings are escaped completely: control
    /// characters, quotes, backslashes, U+2028/U+2029, and lone UTF-16 surrogates (which would make the
    /// text unencodable) become U+FFFD, so the output is always valid JSON and valid UTF-16. Strings longer
    /// than MaxStringChars are cut (never inside a surrogate pair) and counted in CutStrings.</summary>
    public sealed class JsonWriter
    {
        public const int DefaultMaxStringChars = 1 << 20;

        private readonly StringBuilder text;
        private readonly int maxStringChars;
        // One entry per open object/array: whether a value was already written at that level.
        private bool[] hasValue = new bool[16];
        private int depth;
        private bool afterName;

        public JsonWriter() : this(DefaultMaxStringChars, 256) { }

        public JsonWriter(int maxStringChars, int initialCapacity)
        {
            if (maxStringChars < 1) throw new ArgumentOutOfRangeException("maxStringChars");
            this.maxStringChars = maxStringChars;
            text = new StringBuilder(Math.Max(16, initialCapacity));
        }

        /// <summary>How many strings were cut to MaxStringChars.</summary>
        public int CutStrings { get; private set; }

        public int MaxStringChars { get { return maxStringChars; } }

        /// <summary>Characters written so far.</summary>
        public int Length { get { return text.Length; } }

        public JsonWriter BeginObject() { BeforeValue(); text.Append('{'); Push(); return this; }

        public JsonWriter EndObject() { Pop(); text.Append('}'); return this; }

        public JsonWriter BeginArray() { BeforeValue(); text.Append('['); Push(); return this; }

        public JsonWriter EndArray() { Pop(); text.Append(']'); return this; }

        public JsonWriter Name(string name)
        {
            if (depth == 0 || afterName) throw new InvalidOperationException("a property name needs an open object");
            if (hasValue[depth - 1]) text.Append(',');
            hasValue[depth - 1] = true;
            AppendString(name ?? "", int.MaxValue);  // names are the code's own: never cut
            text.Append(':');
            afterName = true;
            return this;
        }

        public JsonWriter Value(string value)
        {
            BeforeValue();
            if (value == null) text.Append("null"); else AppendString(value, maxStringChars);
            return this;
        }

        /// <summary>A string written whole, never cut: only for text the core made itself and whose length its
        /// caller bounds (a blob's base64, which must decode to exactly its "bytes").</summary>
        public JsonWriter UncappedValue(string value)
        {
            BeforeValue();
            if (value == null) text.Append("null"); else AppendString(value, int.MaxValue);
            return this;
        }

        public JsonWriter Value(long value) { BeforeValue(); text.Append(value.ToString(CultureInfo.InvariantCulture)); return this; }

        public JsonWriter Value(int value) { return Value((long)value); }

        public JsonWriter Value(double value)
        {
            BeforeValue();
            if (double.IsNaN(value) || double.IsInfinity(value)) text.Append("null");
            else text.Append(value.ToString("R", CultureInfo.InvariantCulture));
            return this;
        }

        public JsonWriter Value(bool value) { BeforeValue(); text.Append(value ? "true" : "false"); return this; }

        /// <summary>A UTC time as ISO 8601 with a Z (seconds precision, what the envelopes use).</summary>
        public JsonWriter Value(DateTime utc)
        {
            return Value(utc.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
        }

        public JsonWriter Null() { BeforeValue(); text.Append("null"); return this; }

        public JsonWriter Property(string name, string value) { return Name(name).Value(value); }

        public JsonWriter Property(string name, long value) { return Name(name).Value(value); }

        public JsonWriter Property(string name, int value) { return Name(name).Value(value); }

        public JsonWriter Property(string name, bool value) { return Name(name).Value(value); }

        public JsonWriter Property(string name, DateTime utc) { return Name(name).Value(utc); }

        /// <summary>A nullable number: null when the value is unknown.</summary>
        public JsonWriter Property(string name, long? value)
        {
            Name(name);
            return value.HasValue ? Value(value.Value) : Null();
        }

        public JsonWriter StringArray(string name, System.Collections.Generic.IEnumerable<string> values)
        {
            Name(name).BeginArray();
            foreach (string value in values) Value(value);
            return EndArray();
        }

        /// <summary>The finished document. Throws when an object or array is still open.</summary>
        public override string ToString()
        {
            if (depth != 0) throw new InvalidOperationException("the JSON document is not complete");
            return text.ToString();
        }

        private void Push()
        {
            if (depth == hasValue.Length) Array.Resize(ref hasValue, depth * 2);
            hasValue[depth++] = false;
        }

        private void Pop()
        {
            if (depth == 0 || afterName) throw new InvalidOperationException("nothing to close here");
            depth--;
        }

        private void BeforeValue()
        {
            if (afterName) { afterName = false; return; }
            if (depth > 0)
            {
                if (hasValue[depth - 1]) text.Append(',');
                hasValue[depth - 1] = true;
            }
            else if (text.Length > 0)
            {
                throw new InvalidOperationException("a JSON document holds one top-level value");
            }
        }

        private void AppendString(string value, int cap)
        {
            int end = value.Length;
            if (end > cap)
            {
                end = cap;
                // Do not keep the first half of a surrogate pair whose second half is cut away.
                if (char.IsHighSurrogate(value[end - 1])) end--;
                CutStrings++;
            }
            text.Append('"');
            int run = 0;  // start of the current run of characters that need no escaping
            for (int i = 0; i < end; i++)
            {
                char c = value[i];
                string escape = null;
                if (c < 0x20 || c == '"' || c == '\\' || c == '\u2028' || c == '\u2029') escape = Escape(c);
                else if (char.IsHighSurrogate(c))
                {
                    if (i + 1 < end && char.IsLowSurrogate(value[i + 1])) { i++; continue; }
                    escape = "\\ufffd";
                }
                else if (char.IsLowSurrogate(c)) escape = "\\ufffd";
                if (escape == null) continue;
                text.Append(value, run, i - run).Append(escape);
                run = i + 1;
            }
            text.Append(value, run, end - run).Append('"');
        }

        private static string Escape(char c)
        {
            switch (c)
            {
                case '"': return "\\\"";
                case '\\': return "\\\\";
                case '\n': return "\\n";
                case '\r': return "\\r";
                case '\t': return "\\t";
                case '\b': return "\\b";
                case '\f': return "\\f";
                default: return "\\u" + ((int)c).ToString("x4", CultureInfo.InvariantCulture);
            }
        }
    }
}
