// dotnet run --project samples/ClusterNode -- MODEL [JOIN_HOST:PORT]
// A host app that is a cluster node: logits of two token rows, run on the devices of every node of the cluster.
using DistributedInference.Models.Runtime;
using DistributedInference.Samples.ClusterNode;
using TorchSharp;

LibTorch.Initialize();
using var ids = torch.tensor(new long[] { 1, 2, 3, 4, 5, 6, 7, 8 }, [2, 4]);
using var logits = await ClusterNodeSample.RunAsync(args.Length > 0 ? args[0] : "gpt2-tiny", ids, args.Length > 1 ? args[1] : null);
Console.WriteLine($"logits [{string.Join(", ", logits.shape)}]");
