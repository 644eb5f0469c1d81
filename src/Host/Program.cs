using DistributedInference.Host.CommandLine;

return await DiCommandLine.Create().Parse(args).InvokeAsync(new System.CommandLine.InvocationConfiguration { EnableDefaultExceptionHandler = false });
