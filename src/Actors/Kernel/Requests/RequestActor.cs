using System.Threading.Channels;
using Akka.Actor;
using DistributedInference.Actors.Kernel.Membership;

namespace DistributedInference.Actors.Kernel.Requests;

/// <summary>The actor behind one <see cref="Request"/>: sends, watches, times and relays (see there).</summary>
internal sealed class RequestActor : MembersOnlyActor, IWithTimers
{
    private readonly IActorRef? _target;
    private readonly Func<IActorRef, object>? _message;
    private readonly RequestPolicy _policy;
    private readonly ChannelWriter<object> _answers;
    private readonly CancellationToken _cancellation;
    private CancellationTokenRegistration _onCancel;
    private bool _answered;
    private bool _ending;
    private int _resends;

    public RequestActor(IActorRef? target, Func<IActorRef, object>? message, RequestPolicy policy, ChannelWriter<object> answers, CancellationToken cancellation)
    {
        _target = target;
        _message = message;
        _policy = policy;
        _answers = answers;
        _cancellation = cancellation;
        Receive<Terminated>(terminated => Timers.StartSingleTimer(Tick.Lost, new Lost(NodeOf(terminated.ActorRef)), _policy.LostGrace));
        Receive<Lost>(lost => End(new AnswererLost(lost.Node)));
        Receive<Outcome>(outcome => End(outcome.Value));
        Receive<WatchActor>(watch => Context.Watch(watch.Actor));
        Receive<Tick>(HandleTick);
        ReceiveAny(HandleAnswer);
    }

    public ITimerScheduler Timers { get; set; } = null!;

    protected override void PreStart()
    {
        if (_target is not null && _message is not null)
        {
            if (_policy.Watch == RequestWatch.Target)
            {
                Context.Watch(_target);
            }

            _target.Tell(_message(Self), Self);
            ScheduleResend();
        }

        if (_policy.FirstAnswerWithin is { } first)
        {
            Timers.StartSingleTimer(Tick.FirstAnswer, Tick.FirstAnswer, first);
        }

        if (_policy.Deadline is { } deadline)
        {
            Timers.StartSingleTimer(Tick.Deadline, Tick.Deadline, deadline);
        }

        var self = Self;
        _onCancel = _cancellation.Register(() => self.Tell(Tick.Cancel));
    }

    protected override void PostStop()
    {
        _onCancel.Dispose();
        _answers.TryComplete();
    }

    private void HandleAnswer(object answer)
    {
        if (!_answered)
        {
            _answered = true;
            Timers.Cancel(Tick.FirstAnswer);
            Timers.Cancel(Tick.Resend);
            if (_policy.Watch == RequestWatch.FirstAnswerer && !Sender.IsNobody())
            {
                Context.Watch(Sender);
            }

            if (_policy.AnnounceAnswerer && !Sender.IsNobody())
            {
                _answers.TryWrite(new AnswererFound(NodeOf(Sender)));
            }
        }

        _answers.TryWrite(answer);
    }

    // An actor of this node has a local address (akka://system): the node's own, as other nodes know it, is said instead.
    private Address NodeOf(IActorRef actor) =>
        actor.Path.Address.HasLocalScope ? ((ExtendedActorSystem)Context.System).Provider.DefaultAddress : actor.Path.Address;

    private void HandleTick(Tick tick)
    {
        switch (tick)
        {
            case Tick.Resend when !_answered && !_ending:
                _resends++;
                _target!.Tell(_message!(Self), Self);
                ScheduleResend();
                break;
            case Tick.FirstAnswer when !_answered:
                End(new NoAnswer(_policy.FirstAnswerWithin!.Value));
                break;
            case Tick.Deadline:
                GiveUp(new DeadlinePassed(_policy.Deadline!.Value));
                break;
            case Tick.Cancel:
                GiveUp(RequestCancelled.Instance);
                break;
            case Tick.Ended:
                Context.Stop(Self);
                break;
        }
    }

    private void ScheduleResend()
    {
        if (_policy.ResendAfter.Count > 0)
        {
            Timers.StartSingleTimer(Tick.Resend, Tick.Resend, _policy.ResendAfter[Math.Min(_resends, _policy.ResendAfter.Count - 1)]);
        }
    }

    // The target is told to cancel; its last answers still come for CancelWait, then the request ends with the outcome.
    private void GiveUp(object outcome)
    {
        if (_ending)
        {
            return;
        }

        _ending = true;
        if (_policy.CancelMessage is { } cancel && _target is not null)
        {
            _target.Tell(cancel, Self);
        }

        Timers.Cancel(Tick.Resend);
        Timers.Cancel(Tick.FirstAnswer);
        Timers.StartSingleTimer(Tick.GaveUp, new Outcome(outcome), _policy.CancelWait);
    }

    private void End(object outcome)
    {
        _answers.TryWrite(outcome);
        _answers.TryComplete();
        Self.Tell(Tick.Ended);
    }

    /// <summary>Watch this actor too (<see cref="Request.Watch"/>).</summary>
    internal sealed record WatchActor(IActorRef Actor);

    private sealed record Lost(Address Node);

    private sealed record Outcome(object Value);

    private enum Tick
    {
        Resend,
        FirstAnswer,
        Deadline,
        Cancel,
        Lost,
        GaveUp,
        Ended,
    }
}
