using DistributedInference.Host.CommandLine;

return await DiCommandLine.InvokeAsync(args, new System.CommandLine.InvocationConfiguration { EnableDefaultExceptionHandler = false });
