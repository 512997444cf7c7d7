// Certificates.Windows.cs: the only Get-IisCertificate code that needs Windows. HTTP.sys's SSL bindings are read
// with HttpQueryServiceConfiguration (httpapi.dll), which returns binary records: nothing here parses the
// localized text of "netsh http show sslcert". Certificates come from X509Store(LocalMachine), opened read-only.
// Compiled everywhere, run only on a host (under Mono doubles implement the two interfaces).
namespace IisFleet.Target
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using System.Net;
    using System.Runtime.InteropServices;
    using System.Security.Cryptography.X509Certificates;

    public sealed class HttpApiSslBindings : ISslBindingSource
    {
        // HTTP_SERVICE_CONFIG_ID (http.h): SSLCertInfo = 1, SslSniCertInfo = 5, SslCcsCertInfo = 6.
        private const int ConfigSslCertInfo = 1;
        private const int ConfigSslSniCertInfo = 5;
        private const int ConfigSslCcsCertInfo = 6;
        private const int QueryNext = 1;  // HTTP_SERVICE_CONFIG_QUERY_TYPE.HttpServiceConfigQueryNext
        private const uint InitializeConfig = 2;  // HTTP_INITIALIZE_CONFIG
        private const uint NoError = 0;
        private const uint ErrorInsufficientBuffer = 122;
        private const uint ErrorNoMoreItems = 259;
        private const int SockaddrStorageBytes = 128;

        [StructLayout(LayoutKind.Sequential)]
        private struct HttpApiVersion
        {
            public ushort Major;
            public ushort Minor;
        }

        /// <summary>HTTP_SERVICE_CONFIG_SSL_PARAM: the marshaller lays it out with the platform's alignment.</summary>
        [StructLayout(LayoutKind.Sequential)]
        private struct SslParam
        {
            public uint SslHashLength;
            public IntPtr SslHash;
            public Guid AppId;
            public IntPtr SslCertStoreName;
            public uint DefaultCertCheckMode;
            public uint DefaultRevocationFreshnessTime;
            public uint DefaultRevocationUrlRetrievalTimeout;
            public IntPtr DefaultSslCtlIdentifier;
            public IntPtr DefaultSslCtlStoreName;
            public uint DefaultFlags;
        }

        [DllImport("httpapi.dll", SetLastError = false)]
        private static extern uint HttpInitialize(HttpApiVersion version, uint flags, IntPtr reserved);

        [DllImport("httpapi.dll", SetLastError = false)]
        private static extern uint HttpTerminate(uint flags, IntPtr reserved);

        [DllImport("httpapi.dll", SetLastError = false)]
        private static extern uint HttpQueryServiceConfiguration(IntPtr serviceHandle, int configId, IntPtr input,
                                                                 int inputLength, IntPtr output, int outputLength,
                                                                 out int returnLength, IntPtr overlapped);

        public IList<SslBindingRecord> Read(string kind)
        {
            HttpApiVersion version = new HttpApiVersion { Major = 1, Minor = 0 };
            uint status = HttpInitialize(version, InitializeConfig, IntPtr.Zero);
            if (status != NoError) throw new System.ComponentModel.Win32Exception((int)status);
            try
            {
                if (kind == "ip") return ReadAll(ConfigSslCertInfo, kind);
                if (kind == "sni") return ReadAll(ConfigSslSniCertInfo, kind);
                return ReadAll(ConfigSslCcsCertInfo, kind);
            }
            finally
            {
                HttpTerminate(InitializeConfig, IntPtr.Zero);
            }
        }

        /// <summary>Every record of one store, by HttpServiceConfigQueryNext with tokens 0, 1, 2 ... until
        /// ERROR_NO_MORE_ITEMS.</summary>
        private static IList<SslBindingRecord> ReadAll(int configId, string kind)
        {
            List<SslBindingRecord> records = new List<SslBindingRecord>();
            int pointer = IntPtr.Size;
            // The query structures: {QueryDesc; key; dwToken}. The IP key is one pointer; the SNI key
            // (SOCKADDR_STORAGE + PWSTR) and the CCS key (SOCKADDR_STORAGE) are 8-byte aligned.
            int keyOffset = configId == ConfigSslCertInfo ? pointer : 8;
            int keyLength = configId == ConfigSslCertInfo ? pointer
                : configId == ConfigSslSniCertInfo ? Align(SockaddrStorageBytes + pointer, 8) : SockaddrStorageBytes;
            int tokenOffset = keyOffset + keyLength;
            int queryLength = Align(tokenOffset + 4, Math.Max(pointer, configId == ConfigSslCertInfo ? pointer : 8));
            IntPtr query = Marshal.AllocHGlobal(queryLength);
            int outputLength = 4096;
            IntPtr output = Marshal.AllocHGlobal(outputLength);
            try
            {
                for (int token = 0; ; token++)
                {
                    for (int i = 0; i < queryLength; i++) Marshal.WriteByte(query, i, 0);
                    Marshal.WriteInt32(query, 0, QueryNext);
                    Marshal.WriteInt32(query, tokenOffset, token);
                    int needed;
                    uint status = HttpQueryServiceConfiguration(IntPtr.Zero, configId, query, queryLength, output,
                                                                outputLength, out needed, IntPtr.Zero);
                    if (status == ErrorInsufficientBuffer && needed > outputLength)
                    {
                        Marshal.FreeHGlobal(output);
                        outputLength = needed;
                        output = Marshal.AllocHGlobal(outputLength);
                        status = HttpQueryServiceConfiguration(IntPtr.Zero, configId, query, queryLength, output,
                                                               outputLength, out needed, IntPtr.Zero);
                    }
                    if (status == ErrorNoMoreItems) break;
                    if (status != NoError) throw new System.ComponentModel.Win32Exception((int)status);
                    records.Add(Decode(configId, kind, output));
                }
            }
            finally
            {
                Marshal.FreeHGlobal(output);
                Marshal.FreeHGlobal(query);
            }
            return records;
        }

        /// <summary>One HTTP_SERVICE_CONFIG_SSL_SET / _SNI_SET / _CCS_SET: {key; HTTP_SERVICE_CONFIG_SSL_PARAM}.</summary>
        private static SslBindingRecord Decode(int configId, string kind, IntPtr set)
        {
            int pointer = IntPtr.Size;
            IntPtr address;
            string hostName = "";
            int paramOffset;
            if (configId == ConfigSslCertInfo)
            {
                address = Marshal.ReadIntPtr(set, 0);  // HTTP_SERVICE_CONFIG_SSL_KEY.pIpPort
                paramOffset = pointer;
            }
            else if (configId == ConfigSslSniCertInfo)
            {
                address = set;  // HTTP_SERVICE_CONFIG_SSL_SNI_KEY.IpPort, then Host
                IntPtr host = Marshal.ReadIntPtr(set, SockaddrStorageBytes);
                hostName = host == IntPtr.Zero ? "" : Marshal.PtrToStringUni(host);
                paramOffset = Align(SockaddrStorageBytes + pointer, 8);
            }
            else
            {
                address = set;  // HTTP_SERVICE_CONFIG_SSL_CCS_KEY.LocalAddress
                paramOffset = SockaddrStorageBytes;
            }
            SslParam param = (SslParam)Marshal.PtrToStructure(new IntPtr(set.ToInt64() + paramOffset), typeof(SslParam));
            byte[] hash = new byte[param.SslHash == IntPtr.Zero ? 0 : (int)Math.Min(param.SslHashLength, 64u)];
            if (hash.Length > 0) Marshal.Copy(param.SslHash, hash, 0, hash.Length);
            string store = param.SslCertStoreName == IntPtr.Zero ? "" : Marshal.PtrToStringUni(param.SslCertStoreName);
            int port;
            string ip = SocketAddress(address, out port);
            return new SslBindingRecord(kind, ip, hostName, port, hash, store,
                                        param.AppId.ToString("B", CultureInfo.InvariantCulture));
        }

        /// <summary>SOCKADDR_IN (family 2: port at 2, address at 4) or SOCKADDR_IN6 (family 23: port at 2,
        /// address at 8); the port is in network byte order.</summary>
        private static string SocketAddress(IntPtr sockaddr, out int port)
        {
            port = 0;
            if (sockaddr == IntPtr.Zero) return "";
            int family = (ushort)Marshal.ReadInt16(sockaddr, 0);
            port = Marshal.ReadByte(sockaddr, 2) * 256 + Marshal.ReadByte(sockaddr, 3);
            byte[] bytes = new byte[family == 23 ? 16 : 4];
            Marshal.Copy(new IntPtr(sockaddr.ToInt64() + (family == 23 ? 8 : 4)), bytes, 0, bytes.Length);
            return new IPAddress(bytes).ToString();
        }

        private static int Align(int value, int alignment)
        {
            return (value + alignment - 1) / alignment * alignment;
        }
    }

    public sealed class LocalMachineCertificateStore : ICertificateStore
    {
        public StoredCertificate Find(string storeName, string thumbprint)
        {
            X509Store store = new X509Store(storeName, StoreLocation.LocalMachine);
            try
            {
                store.Open(OpenFlags.ReadOnly | OpenFlags.OpenExistingOnly);
                X509Certificate2Collection matches = store.Certificates.Find(X509FindType.FindByThumbprint, thumbprint, false);
                if (matches.Count == 0) return null;
                X509Certificate2 certificate = matches[0];
                return new StoredCertificate(certificate.RawData, certificate.HasPrivateKey);
            }
            finally
            {
                store.Close();
            }
        }
    }

    public static partial class WindowsCollectors
    {
        public static string Certificate(int maxBindings)
        {
            return CertificateCollector.Collect(LocalHost.Instance, new HttpApiSslBindings(),
                                                new LocalMachineCertificateStore(), maxBindings);
        }
    }
}
