// ContentSecurity.Windows.cs: the only Get-IisContentAcl code that needs Windows (ACL and remote-registry
// APIs). Compiled everywhere, run only on a host: under Mono nothing loads these types (a test double
// implements IContentSecurity instead). docs/collectors.md lists these lines and how they were checked.
namespace IisFleet.Target
{
    using System.IO;
    using System.Security.AccessControl;
    using Microsoft.Win32;

    public sealed class WindowsContentSecurity : IContentSecurity
    {
        private const AccessControlSections Sections = AccessControlSections.Owner | AccessControlSections.Group |
                                                       AccessControlSections.Access;

        /// <summary>Where a file server keeps each share's descriptor (a REG_BINARY value per share name).</summary>
        private const string ShareSecurityKey = "SYSTEM\\CurrentControlSet\\Services\\LanmanServer\\Shares\\Security";

        public string ReadSddl(string path)
        {
            // DirectorySecurity(path) asks for the descriptor directly, so it tells "denied" (Unauthorized-
            // AccessException) from "missing" (DirectoryNotFound/FileNotFound) even where Directory.Exists,
            // which needs the parent listed, says false for both.
            if (File.Exists(path)) return new FileSecurity(path, Sections).GetSecurityDescriptorSddlForm(Sections);
            return new DirectorySecurity(path, Sections).GetSecurityDescriptorSddlForm(Sections);
        }

        public string ReadShareSddl(string server, string share)
        {
            using (RegistryKey hive = RegistryKey.OpenRemoteBaseKey(RegistryHive.LocalMachine, server))
            using (RegistryKey key = hive.OpenSubKey(ShareSecurityKey, false))  // false: a read-only handle
            {
                if (key == null) throw new DirectoryNotFoundException("The server " + server + " has no share security key.");
                byte[] binary = key.GetValue(share) as byte[];
                if (binary == null) return null;  // no stored descriptor: the default share permissions apply
                return new RawSecurityDescriptor(binary, 0).GetSddlForm(AccessControlSections.All);
            }
        }
    }

    /// <summary>The entry points wrappers call on a host: the portable collectors with the Windows readers.</summary>
    public static partial class WindowsCollectors
    {
        public static string ContentAcl(int maxPaths)
        {
            return ContentAclCollector.Collect(LocalHost.Instance, new WindowsContentSecurity(), maxPaths);
        }
    }
}
