using DistributedInference.Actors.Kernel.Wire;

namespace DistributedInference.Actors.Kernel.Transport;

/// <summary>The wire format of the data plane's own messages (where a node's data plane listens).</summary>
public sealed class TransportProtocol : WireProtocol
{
    public override void Register(WireRegistry registry) => registry
        .Add("get-data-plane-endpoint", GetDataPlaneEndpoint.Instance)
        .Add<DataPlaneEndpoint>("data-plane-endpoint", (w, m) => w.String(m.Endpoint), r => new DataPlaneEndpoint(r.String()));
}
