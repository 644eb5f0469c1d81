namespace DistributedInference.Actors.Kernel.Wire;

/// <summary>
/// A message that may cross nodes. hocon/serialization.conf binds this one interface to
/// <see cref="DistributedInferenceSerializer"/>, which writes each message with what its feature's
/// <see cref="WireProtocol"/> registered for its type (a manifest, a writer, a reader): no type-name JSON, and adding a
/// message to a feature is one edit in that feature's protocol file.
/// </summary>
public interface IWireMessage
{
}
