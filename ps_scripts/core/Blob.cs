// Blob.cs: every file or excerpt leaves the host as a blob: gzip, base64, its size and its SHA-256.
namespace IisFleet.Target
{
    using System;
    using System.IO;
    using System.IO.Compression;
    using System.Security.Cryptography;
    using System.Text;

    /// <summary>Builds one blob incrementally: bytes are compressed and hashed as they are appended, so
    /// only the compressed form is held in memory.</summary>
    public sealed class BlobBuilder : IDisposable
    {
        private static readonly UTF8Encoding Utf8 = new UTF8Encoding(false);
        // Header (no name, no time, unknown OS), one empty final stored block, CRC-32 0, size 0 (RFC 1952).
        private static readonly byte[] EmptyGzip = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
        private readonly MemoryStream compressed = new MemoryStream();
        private readonly HashAlgorithm hash = NewSha256();
        private GZipStream gzip;
        private byte[] scratch = new byte[4096];

        public BlobBuilder()
        {
            gzip = new GZipStream(compressed, CompressionLevel.Optimal, true);
        }

        /// <summary>Uncompressed bytes appended so far.</summary>
        public long Bytes { get; private set; }

        /// <summary>The lower-case hex SHA-256 of the bytes appended, once WriteTo has finished the blob (else null).</summary>
        public string Sha256 { get; private set; }

        /// <summary>Compressed bytes produced so far (what the blob will cost on the wire, before base64).</summary>
        public long CompressedBytes { get { return compressed.Length; } }

        public void Append(byte[] buffer, int offset, int count)
        {
            if (gzip == null) throw new ObjectDisposedException("BlobBuilder");
            if (count <= 0) return;
            gzip.Write(buffer, offset, count);
            hash.TransformBlock(buffer, offset, count, null, 0);
            Bytes += count;
        }

        public void Append(string value)
        {
            int needed = Utf8.GetMaxByteCount(value.Length);
            if (scratch.Length < needed) scratch = new byte[Math.Max(needed, scratch.Length * 2)];
            int count = Utf8.GetBytes(value, 0, value.Length, scratch, 0);
            Append(scratch, 0, count);
        }

        /// <summary>Finishes the blob and writes it as the value of the current JSON position:
        /// {"encoding":"gzip+base64","content":...,"bytes":n,"truncated":b,"sha256":hex}.</summary>
        public void WriteTo(JsonWriter json, bool truncated)
        {
            if (gzip == null) throw new ObjectDisposedException("BlobBuilder");
            gzip.Dispose();  // flushes the gzip trailer into `compressed`
            gzip = null;
            hash.TransformFinalBlock(new byte[0], 0, 0);
            Sha256 = Hex(hash.Hash);
            // GZipStream writes nothing at all for no input (not even a header): send a valid empty member.
            string content = Bytes == 0 && compressed.Length == 0
                ? Convert.ToBase64String(EmptyGzip)
                : Convert.ToBase64String(compressed.GetBuffer(), 0, (int)compressed.Length);
            json.BeginObject()
                .Property("encoding", "gzip+base64")
                .Name("content").UncappedValue(content)  // a cut base64 string would not decode
                .Property("bytes", Bytes)
                .Property("truncated", truncated)
                .Property("sha256", Sha256)
                .EndObject();
        }

        public void Dispose()
        {
            if (gzip != null) { gzip.Dispose(); gzip = null; }
            compressed.Dispose();
            hash.Dispose();
        }

        /// <summary>Writes a whole byte range as one blob.</summary>
        public static void Write(JsonWriter json, byte[] data, int offset, int count, bool truncated)
        {
            using (BlobBuilder blob = new BlobBuilder())
            {
                blob.Append(data, offset, count);
                blob.WriteTo(json, truncated);
            }
        }

        public static string Sha256Hex(byte[] data, int offset, int count)
        {
            using (HashAlgorithm sha = NewSha256())
            {
                return Hex(sha.ComputeHash(data, offset, count));
            }
        }

        internal static HashAlgorithm NewSha256()
        {
            // The CryptoServiceProvider class is the FIPS-validated one: SHA256Managed throws
            // InvalidOperationException on a Windows host with the FIPS policy enforced.
            try { return new SHA256CryptoServiceProvider(); }
            catch (PlatformNotSupportedException) { return new SHA256Managed(); }
            catch (CryptographicException) { return new SHA256Managed(); }
        }

        internal static string Hex(byte[] digest)
        {
            StringBuilder hex = new StringBuilder(digest.Length * 2);
            foreach (byte b in digest) hex.Append(b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
            return hex.ToString();
        }
    }
}
