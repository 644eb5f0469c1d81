using Akka.Actor;
using Akka.TestKit.Xunit2;
using DistributedInference.Actors.Kernel.Requests;

namespace DistributedInference.Actors.Tests.Kernel.Requests;

/// <summary>The per-request actor: send, resend until answered, watch, deadlines, cancellation.</summary>
public sealed class RequestTests : TestKit
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    private sealed record Ping(IActorRef ReplyTo);

    [Fact]
    public async Task Answers_come_in_order_and_a_target_that_stops_ends_the_request()
    {
        var target = CreateTestProbe();
        await using var request = Request.Start(Sys, target.Ref, replyTo => new Ping(replyTo), new RequestPolicy { LostGrace = TimeSpan.Zero });
        var ping = await target.ExpectMsgAsync<Ping>();
        ping.ReplyTo.Tell("one", target.Ref);
        ping.ReplyTo.Tell("two", target.Ref);
        Assert.Equal("one", await request.NextAsync().AsTask().WaitAsync(Bound));
        Assert.Equal("two", await request.NextAsync().AsTask().WaitAsync(Bound));
        Sys.Stop(target.Ref);
        Assert.IsType<AnswererLost>(await request.NextAsync().AsTask().WaitAsync(Bound));
    }

    [Fact]
    public async Task A_request_is_sent_again_until_the_first_answer_then_never_again()
    {
        var target = CreateTestProbe();
        var policy = new RequestPolicy { ResendAfter = [TimeSpan.FromMilliseconds(50)], Watch = RequestWatch.None };
        await using var request = Request.Start(Sys, target.Ref, replyTo => new Ping(replyTo), policy);
        await target.ExpectMsgAsync<Ping>();
        var again = await target.ExpectMsgAsync<Ping>();
        again.ReplyTo.Tell("answer");
        Assert.Equal("answer", await request.NextAsync().AsTask().WaitAsync(Bound));
        await target.ExpectNoMsgAsync(TimeSpan.FromMilliseconds(300));
    }

    [Fact]
    public async Task Nothing_answering_ends_the_request_with_no_answer()
    {
        var target = CreateTestProbe();
        await using var request = Request.Start(Sys, target.Ref, replyTo => new Ping(replyTo), new RequestPolicy { FirstAnswerWithin = TimeSpan.FromMilliseconds(100) });
        Assert.Equal(new NoAnswer(TimeSpan.FromMilliseconds(100)), await request.NextAsync().AsTask().WaitAsync(Bound));
    }

    [Fact]
    public async Task A_cancelled_request_tells_the_target_takes_its_last_answer_then_ends()
    {
        var target = CreateTestProbe();
        using var cancel = new CancellationTokenSource();
        var policy = new RequestPolicy { CancelMessage = "cancel", CancelWait = TimeSpan.FromMilliseconds(300) };
        await using var request = Request.Start(Sys, target.Ref, replyTo => new Ping(replyTo), policy, cancel.Token);
        var ping = await target.ExpectMsgAsync<Ping>();
        await cancel.CancelAsync();
        await target.ExpectMsgAsync("cancel");
        ping.ReplyTo.Tell("failed: cancelled");
        Assert.Equal("failed: cancelled", await request.NextAsync().AsTask().WaitAsync(Bound));
        Assert.Same(RequestCancelled.Instance, await request.NextAsync().AsTask().WaitAsync(Bound));
    }

    [Fact]
    public async Task A_request_past_its_deadline_cancels_at_the_target_and_says_so()
    {
        var target = CreateTestProbe();
        var policy = new RequestPolicy { Deadline = TimeSpan.FromMilliseconds(100), CancelMessage = "cancel", CancelWait = TimeSpan.Zero };
        await using var request = Request.Start(Sys, target.Ref, replyTo => new Ping(replyTo), policy);
        await target.ExpectMsgAsync<Ping>();
        await target.ExpectMsgAsync("cancel");
        Assert.IsType<DeadlinePassed>(await request.NextAsync().AsTask().WaitAsync(Bound));
    }

    [Fact]
    public async Task The_first_answerer_is_announced_and_watched()
    {
        var target = CreateTestProbe();
        var worker = CreateTestProbe();
        var policy = new RequestPolicy { Watch = RequestWatch.FirstAnswerer, AnnounceAnswerer = true, LostGrace = TimeSpan.Zero };
        await using var request = Request.Start(Sys, target.Ref, replyTo => new Ping(replyTo), policy);
        var ping = await target.ExpectMsgAsync<Ping>();
        ping.ReplyTo.Tell("accepted", worker.Ref);
        Assert.IsType<AnswererFound>(await request.NextAsync().AsTask().WaitAsync(Bound));
        Assert.Equal("accepted", await request.NextAsync().AsTask().WaitAsync(Bound));
        Sys.Stop(target.Ref);
        Sys.Stop(worker.Ref);
        Assert.IsType<AnswererLost>(await request.NextAsync().AsTask().WaitAsync(Bound));
    }
}
