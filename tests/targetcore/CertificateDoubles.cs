// Test-only entry (compiled into the lab harness by tests/targetcore/conftest.py, never shipped): Get-IisCertificate's
// core with the lab's stand-ins, where the SSL kinds named in FailKinds throw as httpapi.dll does (Win32Exception)
// and the stores named in FailStores cannot be opened (CryptographicException, as X509Store.Open throws).
namespace IisFleet.Lab.Tests
{
    using System;
    using System.Collections.Generic;
    using IisFleet.Lab;
    using IisFleet.Target;

    public sealed class CertificateWithFailures : ILabEntry
    {
        public string CollectorId { get { return "Test-Certificate"; } }

        public IEnumerable<string> Run(IHostContext host, LabParameters parameters)
        {
            FailingBindings bindings = new FailingBindings(new LabSslBindings(parameters.Strings("__SslBindings")),
                                                           parameters.Strings("FailKinds"));
            FailingStore store = new FailingStore(new LabCertificateStore(parameters.String("__CertificateFolder", "")),
                                                  parameters.Strings("FailStores"));
            yield return CertificateCollector.Collect(host, bindings, store, parameters.Int("MaxBindings", 0));
        }
    }

    internal sealed class FailingBindings : ISslBindingSource
    {
        private readonly ISslBindingSource inner;
        private readonly List<string> failing;

        public FailingBindings(ISslBindingSource inner, string[] failing)
        {
            this.inner = inner;
            this.failing = new List<string>(failing);
        }

        public IList<SslBindingRecord> Read(string kind)
        {
            if (failing.Contains(kind)) throw new System.ComponentModel.Win32Exception(87);  // ERROR_INVALID_PARAMETER
            return inner.Read(kind);
        }
    }

    internal sealed class FailingStore : ICertificateStore
    {
        private readonly ICertificateStore inner;
        private readonly List<string> failing;

        public FailingStore(ICertificateStore inner, string[] failing)
        {
            this.inner = inner;
            this.failing = new List<string>(failing);
        }

        public StoredCertificate Find(string storeName, string thumbprint)
        {
            if (failing.Contains(storeName)) throw new System.Security.Cryptography.CryptographicException("Access is denied.");
            return inner.Find(storeName, thumbprint);
        }
    }
}
