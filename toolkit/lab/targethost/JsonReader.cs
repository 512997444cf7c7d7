// JsonReader.cs (lab harness only): parses the controller's request lines. The core itself never reads JSON.
namespace IisFleet.Lab
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using System.Text;

    /// <summary>Minimal JSON parser: objects become Dictionary&lt;string, object&gt;, arrays List&lt;object&gt;,
    /// numbers long (or double), plus string, bool and null.</summary>
    public sealed class JsonReader
    {
        private readonly string text;
        private int at;

        private JsonReader(string text) { this.text = text; }

        public static object Parse(string text)
        {
            JsonReader reader = new JsonReader(text);
            object value = reader.ReadValue();
            reader.SkipSpace();
            if (reader.at != text.Length) throw reader.Fail("trailing characters");
            return value;
        }

        private object ReadValue()
        {
            SkipSpace();
            if (at >= text.Length) throw Fail("unexpected end");
            char c = text[at];
            if (c == '{') return ReadObject();
            if (c == '[') return ReadArray();
            if (c == '"') return ReadString();
            if (Literal("true")) return true;
            if (Literal("false")) return false;
            if (Literal("null")) return null;
            return ReadNumber();
        }

        private Dictionary<string, object> ReadObject()
        {
            Dictionary<string, object> result = new Dictionary<string, object>(StringComparer.Ordinal);
            at++;
            SkipSpace();
            if (Peek('}')) { at++; return result; }
            while (true)
            {
                SkipSpace();
                string name = ReadString();
                SkipSpace();
                Expect(':');
                result[name] = ReadValue();
                SkipSpace();
                if (Peek(',')) { at++; continue; }
                Expect('}');
                return result;
            }
        }

        private List<object> ReadArray()
        {
            List<object> result = new List<object>();
            at++;
            SkipSpace();
            if (Peek(']')) { at++; return result; }
            while (true)
            {
                result.Add(ReadValue());
                SkipSpace();
                if (Peek(',')) { at++; continue; }
                Expect(']');
                return result;
            }
        }

        private string ReadString()
        {
            Expect('"');
            StringBuilder value = new StringBuilder();
            while (true)
            {
                if (at >= text.Length) throw Fail("unterminated string");
                char c = text[at++];
                if (c == '"') return value.ToString();
                if (c != '\\') { value.Append(c); continue; }
                if (at >= text.Length) throw Fail("unterminated escape");
                char e = text[at++];
                switch (e)
                {
                    case 'n': value.Append('\n'); break;
                    case 'r': value.Append('\r'); break;
                    case 't': value.Append('\t'); break;
                    case 'b': value.Append('\b'); break;
                    case 'f': value.Append('\f'); break;
                    case 'u':
                        if (at + 4 > text.Length) throw Fail("short \\u escape");
                        value.Append((char)int.Parse(text.Substring(at, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                        at += 4;
                        break;
                    default: value.Append(e); break;
                }
            }
        }

        private object ReadNumber()
        {
            int start = at;
            while (at < text.Length && "+-0123456789.eE".IndexOf(text[at]) >= 0) at++;
            string number = text.Substring(start, at - start);
            long whole;
            if (long.TryParse(number, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out whole)) return whole;
            double real;
            if (double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out real)) return real;
            throw Fail("bad value");
        }

        private bool Literal(string word)
        {
            if (string.CompareOrdinal(text, at, word, 0, word.Length) != 0) return false;
            at += word.Length;
            return true;
        }

        private bool Peek(char c) { return at < text.Length && text[at] == c; }

        private void Expect(char c)
        {
            if (!Peek(c)) throw Fail("expected '" + c + "'");
            at++;
        }

        private void SkipSpace()
        {
            while (at < text.Length && char.IsWhiteSpace(text[at])) at++;
        }

        private FormatException Fail(string what)
        {
            return new FormatException("bad JSON request at character " + at + ": " + what);
        }
    }
}
