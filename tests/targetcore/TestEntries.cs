// Test-only entry points (compiled into the lab harness by tests/targetcore/conftest.py, never shipped):
// they expose the core's building blocks so the tests can drive them through the real harness process.
namespace IisFleet.Lab.Tests
{
    using System.Collections.Generic;
    using System.IO;
    using IisFleet.Lab;
    using IisFleet.Target;

    /// <summary>Writes the given strings through JsonWriter, cut at MaxChars.</summary>
    public sealed class JsonEcho : ILabEntry
    {
        public string CollectorId { get { return "Test-JsonEcho"; } }

        public IEnumerable<string> Run(IHostContext host, LabParameters parameters)
        {
            JsonWriter json = new JsonWriter(parameters.Int("MaxChars", JsonWriter.DefaultMaxStringChars), 64);
            json.BeginObject().StringArray("strings", parameters.Strings("Strings"));
            json.Property("cut", json.CutStrings).EndObject();
            yield return json.ToString();
        }
    }

    /// <summary>Lists a folder through host.Files and returns each file as a blob.</summary>
    public sealed class FolderDump : ILabEntry
    {
        public string CollectorId { get { return "Test-FolderDump"; } }

        public IEnumerable<string> Run(IHostContext host, LabParameters parameters)
        {
            string folder = host.ExpandVariables(parameters.String("Folder", ""));
            Envelope envelope = new Envelope("Test-FolderDump", 1, host);
            JsonWriter json = envelope.Begin(256);
            json.Property("exists", host.Files.DirectoryExists(folder));
            json.Name("folders").BeginArray();
            try
            {
                foreach (string sub in host.Files.ListDirectories(folder)) json.Value(sub);
            }
            catch (IOException error)
            {
                envelope.Errors.Add(ProbeError.FromException("list", folder, error));
            }
            json.EndArray().Name("files").BeginArray();
            try
            {
                foreach (FileEntry file in host.Files.ListFiles(folder))
                {
                    json.BeginObject().Property("path", file.Path).Property("name", file.Name).Property("size", file.Length);
                    using (Stream stream = host.Files.OpenRead(file.Path))
                    {
                        MemoryStream copy = new MemoryStream();
                        stream.CopyTo(copy);
                        json.Name("content");
                        BlobBuilder.Write(json, copy.GetBuffer(), 0, (int)copy.Length, false);
                    }
                    json.EndObject();
                }
            }
            catch (IOException error)
            {
                envelope.Errors.Add(ProbeError.FromException("list", folder, error));
            }
            json.EndArray();
            yield return envelope.End(json);
        }
    }
}
