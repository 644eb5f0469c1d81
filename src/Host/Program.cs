using DistributedInference.Host.CommandLine;
using DistributedInference.Host.Telemetry;

using (OtlpExport.StartIfConfigured())
{
    return await DiCommandLine.InvokeAsync(args, new System.CommandLine.InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
