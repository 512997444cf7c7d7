// ToolProcess.cs: running a Windows command-line tool (setspn, secedit) with a deadline. The tools exist only
// on a host, but this code is portable: its deadline and stream handling run, and are tested, under Mono.
namespace IisFleet.Target
{
    using System;
    using System.Diagnostics;
    using System.Text;
    using System.Threading.Tasks;

    public sealed class ToolResult
    {
        public ToolResult(int exitCode, string output, string error)
        {
            ExitCode = exitCode;
            Output = output;
            Error = error;
        }

        public int ExitCode { get; private set; }
        public string Output { get; private set; }
        public string Error { get; private set; }
    }

    public static class ToolProcess
    {
        /// <summary>Start <paramref name="fileName"/> without a window, read both streams, and give up (killing
        /// it) after <paramref name="timeoutMs"/>. Both streams are read asynchronously: a synchronous ReadToEnd
        /// waits until the tool closes its output, so a tool hung on an unreachable domain controller would
        /// never reach the deadline. <paramref name="encoding"/> null keeps the session's default.</summary>
        public static ToolResult Run(string fileName, string arguments, Encoding encoding, int timeoutMs, string description)
        {
            ProcessStartInfo start = new ProcessStartInfo(fileName);
            start.Arguments = arguments;
            start.UseShellExecute = false;
            start.CreateNoWindow = true;
            start.RedirectStandardOutput = true;
            start.RedirectStandardError = true;
            if (encoding != null)
            {
                start.StandardOutputEncoding = encoding;
                start.StandardErrorEncoding = encoding;
            }
            using (Process process = Process.Start(start))
            {
                Task<string> output = process.StandardOutput.ReadToEndAsync();
                Task<string> error = process.StandardError.ReadToEndAsync();
                bool exited = process.WaitForExit(timeoutMs);
                // A child the tool left behind can hold the streams open after the tool itself exited.
                if (!exited || !Task.WaitAll(new Task[] { output, error }, timeoutMs))
                {
                    try { process.Kill(); } catch (InvalidOperationException) { }
                    throw new TimeoutException(description + " did not finish within " + timeoutMs / 1000 + " s");
                }
                return new ToolResult(process.ExitCode, output.Result, error.Result);
            }
        }
    }
}
