using System.Text.Json;
using System.Text.Json.Nodes;

namespace DistributedInference.Host.Tests.Batch;

/// <summary>Batch input files for the tests, and output files read back by request.</summary>
public static class BatchFiles
{
    public static string Qwen2 => Path.Combine(DiRunner.Fixtures, "qwen2-tiny", "model");

    public static string QwenTemplate => Path.Combine(DiRunner.Fixtures, "chat-templates", "Qwen-Qwen2.5-7B-Instruct", "template.jinja");

    /// <summary>One request line.</summary>
    public static string Line(string customId, string url, JsonObject body) =>
        new JsonObject { ["custom_id"] = customId, ["method"] = "POST", ["url"] = url, ["body"] = body }.ToJsonString();

    /// <summary>
    /// A decoder batch of <paramref name="count"/> requests plus 5 malformed lines and one over the context: greedy
    /// completions of token ids (ids{i}: prompt <see cref="IdsPrompt"/>, <see cref="IdsMaxTokens"/> tokens), completions of
    /// text, seeded samples with two choices and a stop string, chats, and embeddings (which a decoder does not serve).
    /// </summary>
    public static List<string> Mixed(int count)
    {
        var lines = new List<string>();
        for (var i = 0; i < count; i++)
        {
            lines.Add((i % 5) switch
            {
                0 => Line($"ids{i}", "/v1/completions", new JsonObject { ["prompt"] = Ids(IdsPrompt(i)), ["max_tokens"] = IdsMaxTokens, ["temperature"] = 0, ["return_token_ids"] = true }),
                1 => Line($"text{i}", "/v1/completions", new JsonObject { ["prompt"] = $"the number {i} is", ["max_tokens"] = 1 + (i % 7), ["temperature"] = 0 }),
                2 => Line($"sample{i}", "/v1/completions", new JsonObject { ["prompt"] = $"sample {i}", ["max_tokens"] = 6, ["n"] = 2, ["stop"] = "e" }),
                3 => Line($"chat{i}", "/v1/chat/completions", new JsonObject { ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = $"hi {i}" }), ["max_tokens"] = 4 }),
                _ => Line($"embed{i}", "/v1/embeddings", new JsonObject { ["input"] = "x" }),
            });
        }

        lines.Insert(3, "{not json");
        lines.Insert(7, "[1, 2]");
        lines.Insert(11, """{"method": "POST", "url": "/v1/completions", "body": {"prompt": "no id"}}""");
        lines.Insert(13, """{"custom_id": "badurl", "method": "POST", "url": "/v1/images", "body": {}}""");
        lines.Insert(17, """{"custom_id": "badbody", "method": "POST", "url": "/v1/completions", "body": {"prompt": "x", "max_tokens": "many"}}""");
        lines.Insert(19, Line("long", "/v1/completions", new JsonObject { ["prompt"] = Ids(Enumerable.Repeat(5L, 600).ToList()), ["max_tokens"] = 4 }));
        return lines;
    }

    public const int IdsMaxTokens = 6;

    /// <summary>The token ids of request ids{i}: 2 to 14 ids, all inside qwen2-tiny's regular tokens.</summary>
    public static List<long> IdsPrompt(int i) => Enumerable.Range(0, 2 + (i % 13)).Select(t => (long)(((i * 37) + (t * 11)) % 600) + 1).ToList();

    public static JsonArray Ids(IEnumerable<long> ids) => new(ids.Select(id => (JsonNode?)id).ToArray());

    /// <summary>The output's lines by request (custom_id, or <c>line N</c> for lines without one), with what changes
    /// from run to run (ids, timestamps) left out; fails on a request answered twice.</summary>
    public static Dictionary<string, string> Answers(string output)
    {
        var answers = new Dictionary<string, string>();
        foreach (var text in File.ReadLines(output))
        {
            var line = JsonNode.Parse(text)!.AsObject();
            var key = line["custom_id"]?.GetValue<string>() ?? $"line {line["error"]!["line"]!.GetValue<long>()}";
            line.Remove("id");
            if (line["response"] is JsonObject response)
            {
                response.Remove("request_id");
                response["body"]!.AsObject().Remove("id");
                response["body"]!.AsObject().Remove("created");
            }

            Assert.True(answers.TryAdd(key, line.ToJsonString()), $"{key} is answered twice in {output}");
        }

        return answers;
    }

    /// <summary>The token ids of choice 0 of a completion's answer.</summary>
    public static List<long> TokenIds(string answer) =>
        JsonNode.Parse(answer)!["response"]!["body"]!["choices"]![0]!["token_ids"]!.AsArray().Select(n => n!.GetValue<long>()).ToList();

    public static JsonElement Error(string answer) => JsonDocument.Parse(answer).RootElement.GetProperty("error");

    /// <summary>Complete lines in a file another process is appending to (0 when it does not exist yet).</summary>
    public static int LineCount(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            var buffer = new byte[1 << 16];
            var lines = 0;
            int read;
            while ((read = stream.Read(buffer)) > 0)
            {
                lines += buffer.AsSpan(0, read).Count((byte)'\n');
            }

            return lines;
        }
        catch (FileNotFoundException)
        {
            return 0;
        }
    }
}
