using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using DistributedInference.Host.Cluster;
using DistributedInference.Models;
using Spectre.Console;

namespace DistributedInference.Host.CommandLine;

/// <summary>
/// <c>di status --join HOST:PORT [--json]</c>: joins the cluster as a client for a moment (only members talk to a node),
/// prints its members (address, roles, status as Akka names it, reachability) and each device member's devices (model,
/// dtype, task, idle/busy/loading, queue), then leaves. A table, or with <c>--json</c> one object:
/// <c>{"leader": ..., "members": [{"address", "roles", "status", "reachable", "age_rank", "self", "devices": [...]}]}</c>.
/// Exit 2 when the cluster cannot be joined within the join timeout.
/// </summary>
public static class StatusCommand
{
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true };

    public static Command Create()
    {
        var join = SharedOptions.Join("a node of the cluster (repeat for several)");
        join.Required = true;
        var joinTimeout = SharedOptions.JoinTimeout();
        var secretFile = SharedOptions.SecretFile();
        var tlsCertificate = SharedOptions.TlsCertificate();
        var json = new Option<bool>("--json") { Description = "print one JSON object (members, their status, reachability and devices) instead of tables" };
        var command = new Command("status", "Show a cluster's members, their status and reachability, and their devices.")
        {
            join, joinTimeout, secretFile, tlsCertificate, json,
        };
        command.SetAction((result, cancellation) => UserErrors.Run(
            async () =>
            {
                var seeds = result.GetValue(join)!;
                var client = ClusterNode.Start(new NodeOptions(
                    ClusterInference.LocalAddressToward(seeds[0]), 0, seeds, [ClusterNode.ClientRole], "cpu", null, "gpt2", Models.Tasks.InferenceTask.Generate,
                    Models.Runtime.Precision.Fp32, 1, 0, null, Secret: ClusterSecret.Read(result.GetValue(secretFile)), TlsCertificate: result.GetValue(tlsCertificate)));
                ClusterView view;
                try
                {
                    await ClusterJoin.WhenUpAsync(client, seeds, SharedOptions.Seconds(result.GetValue(joinTimeout)), cancellation);
                    view = await ClusterStatus.ReadAsync(client, TimeSpan.FromSeconds(5), cancellation);
                }
                finally
                {
                    await ClusterInference.LeaveAsync(client);
                }

                var output = result.InvocationConfiguration.Output;
                if (result.GetValue(json))
                {
                    await output.WriteLineAsync(JsonSerializer.Serialize(view, Json));
                }
                else
                {
                    Print(view, output);
                }

                return 0;
            },
            result.InvocationConfiguration.Error));
        return command;
    }

    private static void Print(ClusterView view, TextWriter output)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output) });
        if (Console.IsOutputRedirected)
        {
            // Not a terminal: no width to fit, so no wrapped cells for a script to undo.
            console.Profile.Width = 200;
        }

        var members = new Table().AddColumns("member", "roles", "status", "reachable", "age", "devices");
        foreach (var member in view.Members)
        {
            var name = member.Address + (member.Self ? " (this client)" : member.Address == view.Leader ? " (leader)" : string.Empty);
            members.AddRow(
                Markup.Escape(name), string.Join(",", member.Roles), member.Status, member.Reachable ? "yes" : "[red]no[/]",
                member.AgeRank.ToString(CultureInfo.InvariantCulture), member.Devices?.Count.ToString(CultureInfo.InvariantCulture) ?? "no answer");
        }

        console.Write(members);
        var devices = view.Members.SelectMany(m => (m.Devices ?? []).Select(d => (m.Address, Device: d))).ToList();
        if (devices.Count == 0)
        {
            return;
        }

        var table = new Table().AddColumns("member", "device", "model", "task", "dtype", "state", "queue", "batches", "busy s");
        foreach (var (address, device) in devices)
        {
            table.AddRow(
                address, device.Device, Markup.Escape(device.Model ?? "-"), device.Task ?? "-", device.DType ?? "-", device.State,
                device.Queue.ToString(CultureInfo.InvariantCulture), device.CompletedBatches.ToString(CultureInfo.InvariantCulture),
                device.BusySeconds.ToString("0.0", CultureInfo.InvariantCulture));
        }

        console.Write(table);
    }
}
