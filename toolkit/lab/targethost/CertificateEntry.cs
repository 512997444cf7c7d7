// CertificateEntry.cs (lab harness only): Get-IisCertificate answered by the core's CertificateCollector, with
// stand-ins for the two Windows-only readers built from the simulated host (toolkit/lab/model/certstore.py):
//   __SslBindings:       HTTP.sys's SSL table, one "kind\taddress\thost name\tport\thash hex\tstore" line each;
//   __CertificateFolder: the host's LocalMachine stores as files, <store>/<THUMBPRINT>.cer (DER) and, when the
//                        store holds the private key, <store>/<THUMBPRINT>.key next to it.
namespace IisFleet.Lab
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using System.IO;
    using IisFleet.Target;

    public sealed class CertificateEntry : ILabEntry
    {
        public string CollectorId { get { return CertificateCollector.Id; } }

        public IEnumerable<string> Run(IHostContext host, LabParameters parameters)
        {
            yield return CertificateCollector.Collect(host, new LabSslBindings(parameters.Strings("__SslBindings")),
                                                      new LabCertificateStore(parameters.String("__CertificateFolder", "")),
                                                      parameters.Int("MaxBindings", 0));
        }
    }

    public sealed class LabSslBindings : ISslBindingSource
    {
        private readonly List<SslBindingRecord> records = new List<SslBindingRecord>();

        public LabSslBindings(string[] lines)
        {
            foreach (string line in lines)
            {
                string[] fields = line.Split('\t');
                if (fields.Length != 6) throw new ArgumentException("lab SSL binding line needs 6 fields: " + line);
                records.Add(new SslBindingRecord(fields[0], fields[1], fields[2],
                                                 int.Parse(fields[3], CultureInfo.InvariantCulture),
                                                 FromHex(fields[4]), fields[5], "{4dc3e181-e14b-4a21-b022-59fc669b0914}"));
            }
        }

        public IList<SslBindingRecord> Read(string kind)
        {
            return records.FindAll(delegate(SslBindingRecord r) { return r.Kind == kind; });
        }

        private static byte[] FromHex(string hex)
        {
            byte[] bytes = new byte[hex.Length / 2];
            for (int i = 0; i < bytes.Length; i++) bytes[i] = byte.Parse(hex.Substring(2 * i, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            return bytes;
        }
    }

    public sealed class LabCertificateStore : ICertificateStore
    {
        private readonly string folder;

        public LabCertificateStore(string folder)
        {
            this.folder = folder;
        }

        public StoredCertificate Find(string storeName, string thumbprint)
        {
            string store = Path.Combine(folder, storeName.ToUpperInvariant());
            if (!Directory.Exists(store))
            {
                // X509Store with OpenExistingOnly throws CryptographicException for a store that does not exist.
                throw new System.Security.Cryptography.CryptographicException("The system cannot find the file specified (store " + storeName + ")");
            }
            string certificate = Path.Combine(store, thumbprint.ToUpperInvariant() + ".cer");
            if (!File.Exists(certificate)) return null;
            return new StoredCertificate(File.ReadAllBytes(certificate),
                                         File.Exists(Path.Combine(store, thumbprint.ToUpperInvariant() + ".key")));
        }
    }
}
