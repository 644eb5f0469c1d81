using System.Reflection;
using Akka.Actor;
using Akka.TestKit.Xunit2;
using DistributedInference.Actors.Cluster.Devices;
using DistributedInference.Actors.Cluster.Stages;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Actors.Pipeline;
using DistributedInference.Actors.Replica;
using DistributedInference.Models.Gpt2;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Actors.Tests.Kernel.Supervision;

/// <summary>
/// What the node actors of src/Actors/Cluster declare for a child that throws: a <see cref="DeviceManager"/> restarts
/// a device (its model built again) at most <see cref="DeviceManager.MaxRestarts"/> times a minute, then stops it; a
/// <see cref="StageHost"/> never restarts a stage (a restart would lose the state of its calls silently).
/// </summary>
public sealed class ClusterSupervisionTests : TestKit
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    public ClusterSupervisionTests()
        : base(DistributedInferenceConfig.Default())
    {
        LibTorch.Initialize();
    }

    [Fact]
    public async Task A_device_whose_error_escapes_its_own_recovery_is_restarted_with_its_model_then_stopped_after_max_restarts()
    {
        // Every forward throws an error that cannot even be reported: it escapes the device actor's handler.
        var script = new ScriptedReplicaFactory { Throw = (_, _) => throw new Unreportable() };
        var manager = Sys.ActorOf(DeviceManager.Props([DeviceName.Cpu], script.Factory));
        var device = Assert.Single((await manager.Ask<DeviceList>(GetLocalDevices.Instance, Wait)).Devices);
        Watch(device);
        await AwaitAssertAsync(() => Assert.Equal(1, Volatile.Read(ref script.Loads)), Wait);

        // Each escape restarts the device with a model built again, up to MaxRestarts times.
        for (var restart = 1; restart <= DeviceManager.MaxRestarts; restart++)
        {
            device.Tell(new RunBatch("job", restart, new object[] { restart }));
            var loads = restart + 1;
            await AwaitAssertAsync(() => Assert.Equal(loads, Volatile.Read(ref script.Loads)), Wait);
            Assert.Equal(restart, Volatile.Read(ref script.Disposed));
        }

        // One more within the minute: stopped for good, and the node no longer lists it.
        device.Tell(new RunBatch("job", 99, new object[] { 99 }));
        await ExpectTerminatedAsync(device, Wait);
        Assert.Equal(DeviceManager.MaxRestarts + 1, Volatile.Read(ref script.Loads));
        await AwaitAssertAsync(async () => Assert.Empty((await manager.Ask<DeviceList>(GetLocalDevices.Instance, Wait)).Devices), Wait);
    }

    [Fact]
    public async Task A_device_that_is_killed_is_stopped_without_a_restart()
    {
        var script = new ScriptedReplicaFactory();
        var manager = Sys.ActorOf(DeviceManager.Props([DeviceName.Cpu, DeviceName.Cpu], script.Factory));
        var devices = (await manager.Ask<DeviceList>(GetLocalDevices.Instance, Wait)).Devices;

        // Each device loads its model as it starts, after the node has listed it: kill one only once both have loaded.
        await AwaitAssertAsync(() => Assert.Equal(2, Volatile.Read(ref script.Loads)), Wait);
        Watch(devices[0]);
        devices[0].Tell(Kill.Instance);
        await ExpectTerminatedAsync(devices[0], Wait);

        // A restart would have loaded a third model in the same actor; a stopped device is gone instead.
        Assert.Equal(2, Volatile.Read(ref script.Loads));
        await AwaitAssertAsync(async () => Assert.Equal([devices[1]], (await manager.Ask<DeviceList>(GetLocalDevices.Instance, Wait)).Devices), Wait);
    }

    [Fact]
    public async Task A_stage_host_stops_a_stage_that_fails_and_keeps_hosting_others()
    {
        var host = Sys.ActorOf(StageHost.Props([DeviceName.Cpu], ModelIdentity.Of(Fixtures.Path("lm"), null), InferenceTask.Logits, () => Gpt2StagedModel.Load(Gpt2Source.Resolve(Fixtures.Path("lm")), InferenceTask.Logits)));
        var info = await host.Ask<StageHostInfo>(GetStageHostInfo.Instance, Wait);
        var spec = new StageSpec(0, 0, info.Layers.Count, "cpu", Precision.Fp32, Last: true, info.Model, info.Task);

        var coordinator = CreateTestProbe();
        host.Tell(new HostStage(spec, coordinator));
        var stage = (await coordinator.ExpectMsgAsync<StageHosted>(Wait)).StageActor;
        Watch(stage);
        stage.Tell(Kill.Instance);
        await ExpectTerminatedAsync(stage, Wait);

        // The host lives on and hosts a new stage on request (a coordinator re-plans; nothing is restarted for it).
        host.Tell(new HostStage(spec, coordinator));
        var again = (await coordinator.FishForMessageAsync<StageHosted>(_ => true, Wait)).StageActor;
        Assert.NotEqual(stage.Path, again.Path);
    }

    [Fact]
    public void A_stage_host_declares_stop_for_any_error_of_a_stage_where_akka_would_restart()
    {
        var host = ActorOfAsTestActorRef<StageHost>(StageHost.Props([DeviceName.Cpu], ModelIdentity.BuiltIn("lm", 0), InferenceTask.Logits, () => throw new InvalidOperationException("not loaded in this test")));
        var strategy = (SupervisorStrategy)typeof(StageHost).GetMethod("SupervisorStrategy", BindingFlags.Instance | BindingFlags.NonPublic)!.Invoke(host.UnderlyingActor, null)!;

        Assert.Equal(Directive.Stop, strategy.Decider.Decide(new InvalidOperationException("a stage's handler threw")));
        Assert.Equal(Directive.Restart, SupervisorStrategy.DefaultStrategy.Decider.Decide(new InvalidOperationException("a stage's handler threw")));
    }

    // An error whose message cannot be read: the device's recovery, which reports every error, throws on it.
    private sealed class Unreportable : Exception
    {
        public override string Message => throw new InvalidOperationException("no message");
    }
}
