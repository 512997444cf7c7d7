// CertificateCollector.cs: Get-IisCertificate. Every HTTP.sys SSL binding (IP:port, SNI hostname:port and
// Centralized Certificate Store port records) with the certificate it names, read from the LocalMachine store
// the binding names. Reading the bindings (httpapi.dll) and the store needs Windows: both sit behind
// ISslBindingSource / ICertificateStore (HttpApiSslBindings and LocalMachineCertificateStore in
// Certificates.Windows.cs; doubles under Mono). Everything the controller judges (names, dates, key usage) is
// decoded here from the certificate's DER bytes, never from text Windows formats (it is localized).
namespace IisFleet.Target
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using System.Security.Cryptography;
    using System.Security.Cryptography.X509Certificates;
    using System.Text;

    /// <summary>One HTTP.sys SSL binding record.</summary>
    public sealed class SslBindingRecord
    {
        public SslBindingRecord(string kind, string address, string hostName, int port, byte[] hash, string storeName,
                                string appId)
        {
            Kind = kind ?? "";
            Address = address ?? "";
            HostName = hostName ?? "";
            Port = port;
            Hash = hash ?? new byte[0];
            StoreName = string.IsNullOrEmpty(storeName) ? "MY" : storeName;  // HTTP.sys reads MY when none is set
            AppId = appId ?? "";
        }

        /// <summary>ip (IP:port), sni (hostname:port) or ccs (port, Centralized Certificate Store).</summary>
        public string Kind { get; private set; }

        public string Address { get; private set; }

        public string HostName { get; private set; }

        public int Port { get; private set; }

        public byte[] Hash { get; private set; }

        public string StoreName { get; private set; }

        public string AppId { get; private set; }

        public string Endpoint
        {
            get
            {
                string port = Port.ToString(CultureInfo.InvariantCulture);
                if (Kind == "sni") return HostName + ":" + port;
                if (Kind == "ccs") return "*:" + port;
                return (Address.IndexOf(':') >= 0 ? "[" + Address + "]" : Address) + ":" + port;
            }
        }
    }

    public interface ISslBindingSource
    {
        /// <summary>Every record of one kind (ip, sni, ccs). Throws when HTTP.sys cannot be asked (the error is
        /// reported for that kind; the other kinds are still read).</summary>
        IList<SslBindingRecord> Read(string kind);
    }

    /// <summary>A certificate as a store holds it: its DER bytes and whether the store has its private key.</summary>
    public sealed class StoredCertificate
    {
        public StoredCertificate(byte[] rawData, bool hasPrivateKey)
        {
            RawData = rawData;
            HasPrivateKey = hasPrivateKey;
        }

        public byte[] RawData { get; private set; }

        public bool HasPrivateKey { get; private set; }
    }

    public interface ICertificateStore
    {
        /// <summary>The certificate with that SHA-1 thumbprint (upper-case hex) in LocalMachine\storeName, or null.
        /// Throws when the store cannot be opened.</summary>
        StoredCertificate Find(string storeName, string thumbprint);
    }

    public static class CertificateCollector
    {
        public const string Id = "Get-IisCertificate";
        public const int Version = 1;
        public static readonly string[] Kinds = { "ip", "sni", "ccs" };

        public static string Collect(IHostContext host, ISslBindingSource bindings, ICertificateStore store, int maxBindings)
        {
            if (maxBindings <= 0) maxBindings = 500;
            Envelope envelope = new Envelope(Id, Version, host);
            List<ProbeError> errors = envelope.Errors;
            JsonWriter json = envelope.Begin(1 << 12);
            json.Name("ssl_bindings").BeginArray();
            int written = 0;
            bool truncated = false;
            foreach (string kind in Kinds)
            {
                IList<SslBindingRecord> records;
                try
                {
                    records = bindings.Read(kind);
                }
                catch (Exception error)
                {
                    if (!IsProbeFailure(error)) throw;
                    errors.Add(ProbeError.FromException("http.sys-" + kind, kind, error));
                    continue;
                }
                foreach (SslBindingRecord record in records)
                {
                    if (written >= maxBindings)
                    {
                        truncated = true;
                        break;
                    }
                    WriteBinding(json, record, store, errors);
                    written++;
                }
            }
            json.EndArray().Property("truncated", truncated);
            if (truncated)
            {
                errors.Add(new ProbeError("ssl_bindings", "MaxBindings", "cap",
                                          "more than " + maxBindings + " SSL bindings; the rest were not read"));
            }
            return envelope.End(json);
        }

        private static bool IsProbeFailure(Exception error)
        {
            return error is System.ComponentModel.Win32Exception || error is CryptographicException ||
                   error is UnauthorizedAccessException || error is System.IO.IOException ||
                   error is InvalidOperationException || error is DllNotFoundException ||
                   error is EntryPointNotFoundException || error is System.Security.SecurityException;
        }

        private static void WriteBinding(JsonWriter json, SslBindingRecord record, ICertificateStore store,
                                         List<ProbeError> errors)
        {
            string thumbprint = Hex(record.Hash);
            json.BeginObject().Property("kind", record.Kind).Property("endpoint", record.Endpoint)
                .Property("address", record.Address).Property("host_name", record.HostName)
                .Property("port", record.Port).Property("certificate_hash", thumbprint)
                .Property("store", record.StoreName).Property("app_id", record.AppId);
            StoredCertificate found = null;
            string status;
            if (record.Kind == "ccs")
            {
                status = "central-store";  // the certificate is a .pfx on the CCS share, named after the host name
            }
            else if (thumbprint.Length == 0)
            {
                status = "no-hash";
            }
            else
            {
                try
                {
                    found = store.Find(record.StoreName, thumbprint);
                    status = found == null ? "not-found" : "found";
                }
                catch (Exception error)
                {
                    if (!IsProbeFailure(error)) throw;
                    errors.Add(ProbeError.FromException("certificate-store", "LocalMachine\\" + record.StoreName, error));
                    status = "unreadable";
                }
            }
            CertificateFacts facts = null;
            if (found != null)
            {
                try
                {
                    facts = CertificateFacts.Decode(found.RawData);
                }
                catch (Exception error)
                {
                    if (!(error is CryptographicException || error is FormatException || error is ArgumentException)) throw;
                    errors.Add(new ProbeError("certificate", thumbprint, "parse", "cannot decode the certificate: " + error.Message));
                    status = "undecodable";
                }
            }
            json.Property("certificate_status", status).Name("certificate");
            if (facts == null) json.Null();
            else facts.Write(json, found.HasPrivateKey);
            json.EndObject();
        }

        public static string Hex(byte[] bytes)
        {
            StringBuilder text = new StringBuilder(bytes.Length * 2);
            foreach (byte b in bytes) text.Append(b.ToString("X2", CultureInfo.InvariantCulture));
            return text.ToString();
        }
    }

    /// <summary>What the controller needs from a certificate, decoded from its DER bytes: names from the
    /// subject's CN and the subjectAltName extension, validity, key usage and extended key usage.</summary>
    public sealed class CertificateFacts
    {
        private const string CommonNameOid = "2.5.4.3";
        private const string SubjectAltNameOid = "2.5.29.17";
        private const string KeyUsageOid = "2.5.29.15";
        private const string ExtendedKeyUsageOid = "2.5.29.37";
        private static readonly string[] KeyUsageNames =
        {
            "digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment", "keyAgreement",
            "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly",
        };

        private string thumbprint, subject, subjectCn, issuer, serial, signatureAlgorithm;
        private DateTime notBefore, notAfter;
        private bool selfSigned;
        private readonly List<string> dnsNames = new List<string>();
        private readonly List<string> ipAddresses = new List<string>();
        private List<string> keyUsage;  // null: no keyUsage extension (any usage allowed)
        private List<string> extendedKeyUsage;  // null: no EKU extension (any purpose)

        public static CertificateFacts Decode(byte[] raw)
        {
            X509Certificate2 certificate = new X509Certificate2(raw);
            CertificateFacts facts = new CertificateFacts();
            facts.thumbprint = CertificateCollector.Hex(Sha1(raw));
            facts.subject = certificate.Subject;
            facts.issuer = certificate.Issuer;
            facts.serial = certificate.SerialNumber;
            facts.signatureAlgorithm = certificate.SignatureAlgorithm.Value;
            facts.notBefore = certificate.NotBefore.ToUniversalTime();
            facts.notAfter = certificate.NotAfter.ToUniversalTime();
            facts.subjectCn = CommonName(certificate.SubjectName.RawData);
            facts.selfSigned = SameBytes(certificate.SubjectName.RawData, certificate.IssuerName.RawData);
            foreach (X509Extension extension in certificate.Extensions)
            {
                string oid = extension.Oid.Value;
                if (oid == SubjectAltNameOid) facts.ReadAltNames(extension.RawData);
                else if (oid == KeyUsageOid) facts.keyUsage = ReadKeyUsage(extension.RawData);
                else if (oid == ExtendedKeyUsageOid) facts.extendedKeyUsage = ReadOids(extension.RawData);
            }
            return facts;
        }

        public void Write(JsonWriter json, bool hasPrivateKey)
        {
            json.BeginObject().Property("thumbprint", thumbprint).Property("subject", subject)
                .Property("subject_cn", subjectCn).Property("issuer", issuer).Property("serial_number", serial)
                .Property("not_before_utc", notBefore).Property("not_after_utc", notAfter)
                .StringArray("dns_names", dnsNames).StringArray("ip_addresses", ipAddresses)
                .Property("has_private_key", hasPrivateKey);
            if (keyUsage == null) json.Name("key_usage").Null(); else json.StringArray("key_usage", keyUsage);
            if (extendedKeyUsage == null) json.Name("enhanced_key_usage").Null();
            else json.StringArray("enhanced_key_usage", extendedKeyUsage);
            json.Property("signature_algorithm", signatureAlgorithm).Property("self_signed", selfSigned).EndObject();
        }

        private static byte[] Sha1(byte[] data)
        {
            using (SHA1 sha = new SHA1CryptoServiceProvider()) return sha.ComputeHash(data);
        }

        private static bool SameBytes(byte[] a, byte[] b)
        {
            if (a.Length != b.Length) return false;
            for (int i = 0; i < a.Length; i++) if (a[i] != b[i]) return false;
            return true;
        }

        /// <summary>The last CN of a DER Name (SEQUENCE OF SET OF SEQUENCE {OID, value}); "" when there is none.</summary>
        private static string CommonName(byte[] name)
        {
            string found = "";
            Der outer = new Der(name, 0, name.Length);
            Der rdns = outer.Enter(0x30);
            while (!rdns.AtEnd)
            {
                Der set = rdns.Enter(0x31);
                while (!set.AtEnd)
                {
                    Der pair = set.Enter(0x30);
                    string oid = pair.ReadOid();
                    byte tag;
                    byte[] value = pair.ReadAny(out tag);
                    if (oid == CommonNameOid) found = DirectoryString(tag, value);
                }
            }
            return found;
        }

        private static string DirectoryString(byte tag, byte[] value)
        {
            if (tag == 0x1E) return Encoding.BigEndianUnicode.GetString(value);  // BMPString
            if (tag == 0x0C) return Encoding.UTF8.GetString(value);
            return Encoding.GetEncoding(28591).GetString(value);  // Printable/IA5/Teletex: one byte per char
        }

        /// <summary>GeneralNames: dNSName [2] IA5String, iPAddress [7] OCTET STRING (4 or 16 bytes).</summary>
        private void ReadAltNames(byte[] raw)
        {
            Der names = new Der(raw, 0, raw.Length).Enter(0x30);
            while (!names.AtEnd)
            {
                byte tag;
                byte[] value = names.ReadAny(out tag);
                if (tag == 0x82) dnsNames.Add(Encoding.GetEncoding(28591).GetString(value));
                else if (tag == 0x87 && (value.Length == 4 || value.Length == 16)) ipAddresses.Add(new System.Net.IPAddress(value).ToString());
            }
        }

        /// <summary>KeyUsage ::= BIT STRING; bit 0 (digitalSignature) is the most significant bit of the first byte.</summary>
        private static List<string> ReadKeyUsage(byte[] raw)
        {
            byte tag;
            byte[] bits = new Der(raw, 0, raw.Length).ReadAny(out tag);
            List<string> names = new List<string>();
            for (int bit = 0; bit < KeyUsageNames.Length; bit++)
            {
                int index = 1 + bit / 8;  // bits[0] is the count of unused bits
                if (index < bits.Length && (bits[index] & (0x80 >> (bit % 8))) != 0) names.Add(KeyUsageNames[bit]);
            }
            return names;
        }

        /// <summary>ExtKeyUsageSyntax ::= SEQUENCE OF KeyPurposeId (OIDs).</summary>
        private static List<string> ReadOids(byte[] raw)
        {
            List<string> oids = new List<string>();
            Der list = new Der(raw, 0, raw.Length).Enter(0x30);
            while (!list.AtEnd) oids.Add(list.ReadOid());
            return oids;
        }
    }

    /// <summary>A minimal DER reader over a byte range: definite lengths only, which DER requires.</summary>
    internal sealed class Der
    {
        private readonly byte[] data;
        private int position;
        private readonly int end;

        public Der(byte[] data, int start, int end)
        {
            this.data = data;
            position = start;
            this.end = end;
        }

        public bool AtEnd { get { return position >= end; } }

        public byte[] ReadAny(out byte tag)
        {
            int start, length;
            tag = Header(out start, out length);
            byte[] value = new byte[length];
            Array.Copy(data, start, value, 0, length);
            return value;
        }

        public Der Enter(byte expected)
        {
            int start, length;
            byte tag = Header(out start, out length);
            if (tag != expected) throw new FormatException("DER: expected tag 0x" + expected.ToString("X2", CultureInfo.InvariantCulture) +
                                                           ", found 0x" + tag.ToString("X2", CultureInfo.InvariantCulture));
            return new Der(data, start, start + length);
        }

        public string ReadOid()
        {
            int start, length;
            byte tag = Header(out start, out length);
            if (tag != 0x06 || length == 0) throw new FormatException("DER: expected an OBJECT IDENTIFIER");
            StringBuilder text = new StringBuilder();
            long value = 0;
            bool first = true;
            for (int i = start; i < start + length; i++)
            {
                value = (value << 7) + (data[i] & 0x7F);
                if ((data[i] & 0x80) != 0) continue;
                if (first)
                {
                    long top = value < 80 ? value / 40 : 2;
                    text.Append(top.ToString(CultureInfo.InvariantCulture)).Append('.')
                        .Append((value - top * 40).ToString(CultureInfo.InvariantCulture));
                    first = false;
                }
                else
                {
                    text.Append('.').Append(value.ToString(CultureInfo.InvariantCulture));
                }
                value = 0;
            }
            return text.ToString();
        }

        private byte Header(out int start, out int length)
        {
            if (position + 2 > end) throw new FormatException("DER: truncated");
            byte tag = data[position++];
            int first = data[position++];
            if (first < 0x80)
            {
                length = first;
            }
            else
            {
                int count = first & 0x7F;
                if (count == 0 || count > 3 || position + count > end) throw new FormatException("DER: bad length");
                length = 0;
                for (int i = 0; i < count; i++) length = (length << 8) + data[position++];
            }
            if (position + length > end) throw new FormatException("DER: truncated");
            start = position;
            position += length;
            return tag;
        }
    }
}
