using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using DistributedInference.Models.Tasks;
using Microsoft.AspNetCore.Http;

namespace DistributedInference.Host.Serving;

/// <summary>
/// <c>POST /v1/embeddings</c> (sentence-transformers folders): <c>input</c> is a string, a list of strings (tokenized
/// and truncated as sentence-transformers does), a list of token ids or a list of them (run as given);
/// <c>encoding_format</c> <c>float</c> or <c>base64</c> (little-endian float32).
/// </summary>
public static class EmbeddingsEndpoint
{
    public static async Task HandleAsync(HttpContext context, ServingContext serving)
    {
        var startedAt = System.Diagnostics.Stopwatch.GetTimestamp();
        var fields = await serving.ReadBodyAsync(context);
        serving.CheckModel(fields);
        var engine = serving.Backend.Embeddings ?? throw NotSupported(serving.Model);
        var prepared = Prepare(fields, serving.Model);
        if (serving.Backend.Unavailable is { } reason)
        {
            throw ApiException.Unavailable($"No device serves the model `{serving.Model.Name}` now: {reason}");
        }

        IReadOnlyList<float[]> vectors;
        try
        {
            vectors = await engine.EmbedAsync(prepared.Rows, context.RequestAborted);
        }
        catch (Exception e)
        {
            ServingMetrics.Ended(ServingMetrics.Embeddings, serving.Model.Name, startedAt, 0, e);
            throw;
        }

        ServingMetrics.Ended(ServingMetrics.Embeddings, serving.Model.Name, startedAt, prepared.Rows.Sum(r => r.Count));
        await OpenAIJson.WriteAsync(context, prepared.Body(vectors));
    }

    /// <summary>The 400 for a model that does not embed.</summary>
    public static ApiException NotSupported(ServedModel model) => ApiException.BadRequest($"The model `{model.Name}` does not support Embeddings API.", "model");

    /// <summary>Checks an embeddings body (every field read, the rest refused) and tokenizes its inputs.</summary>
    /// <exception cref="ApiException">400 or 413 naming the field.</exception>
    public static PreparedEmbedding Prepare(RequestFields fields, ServedModel model)
    {
        var input = fields.Get("input") ?? throw ApiException.BadRequest("'input' is required.", "input");
        var format = fields.String("encoding_format") ?? "float";
        if (format is not ("float" or "base64"))
        {
            throw ApiException.BadRequest("'encoding_format' must be float or base64.", "encoding_format");
        }

        fields.OnlyDefault("dimensions", v => false);
        fields.String("user");
        fields.RefuseTheRest();
        var rows = Rows(input, model);
        if (rows.FirstOrDefault(r => r.Count > model.ContextLength) is { } tooLong)
        {
            throw new ApiException(413, $"This model's maximum input length is {model.ContextLength} tokens. However, an input is {tooLong.Count} tokens.", param: "input", code: "context_length_exceeded");
        }

        var vocab = model.Source.VocabSize;
        if (rows.SelectMany(r => r).Any(id => id < 0 || id >= vocab))
        {
            var bad = rows.SelectMany(r => r).First(id => id < 0 || id >= vocab);
            throw ApiException.BadRequest($"Token id {bad} is outside the vocabulary of {model.Source.VocabSize} tokens.", "input");
        }

        JsonObject Body(IReadOnlyList<float[]> vectors)
        {
            var data = new JsonArray();
            for (var i = 0; i < vectors.Count; i++)
            {
                data.Add(new JsonObject
                {
                    ["object"] = "embedding",
                    ["index"] = i,
                    ["embedding"] = format == "base64"
                        ? Convert.ToBase64String(MemoryMarshal.AsBytes(vectors[i].AsSpan()))
                        : new JsonArray(vectors[i].Select(v => (JsonNode?)v).ToArray()),
                });
            }

            var tokens = rows.Sum(r => r.Count);
            return new JsonObject
            {
                ["object"] = "list",
                ["data"] = data,
                ["model"] = model.Name,
                ["usage"] = new JsonObject { ["prompt_tokens"] = tokens, ["total_tokens"] = tokens },
            };
        }

        return new PreparedEmbedding(rows, Body);
    }

    private static List<IReadOnlyList<long>> Rows(JsonElement input, ServedModel model)
    {
        static bool IsIds(JsonElement e) => e.ValueKind == JsonValueKind.Array && e.GetArrayLength() > 0 && e.EnumerateArray().All(x => x.ValueKind == JsonValueKind.Number && x.TryGetInt64(out _));
        List<IReadOnlyList<long>> Sentences(IReadOnlyList<string> texts)
        {
            if (texts.Any(t => t.Length == 0))
            {
                throw ApiException.BadRequest("'input' strings must not be empty.", "input");
            }

            var batch = model.Source.Tokenize(texts, InferenceTask.Embed);
            using var ids = batch.InputIds;
            using var mask = batch.AttentionMask;
            var width = (int)ids.shape[1];
            var all = ids.data<long>().ToArray();
            var valid = mask?.to(TorchSharp.torch.ScalarType.Int64).data<long>().ToArray();
            return Enumerable.Range(0, texts.Count).Select(r => (IReadOnlyList<long>)Enumerable.Range(0, width)
                .Where(t => valid is null || valid[(r * width) + t] != 0).Select(t => all[(r * width) + t]).ToList()).ToList();
        }

        return input switch
        {
            { ValueKind: JsonValueKind.String } s => Sentences([s.GetString()!]),
            { ValueKind: JsonValueKind.Array } a when IsIds(a) => [a.EnumerateArray().Select(x => x.GetInt64()).ToList()],
            { ValueKind: JsonValueKind.Array } a when a.GetArrayLength() > 0 && a.EnumerateArray().All(x => x.ValueKind == JsonValueKind.String) =>
                Sentences(a.EnumerateArray().Select(x => x.GetString()!).ToList()),
            { ValueKind: JsonValueKind.Array } a when a.GetArrayLength() > 0 && a.EnumerateArray().All(IsIds) =>
                a.EnumerateArray().Select(x => (IReadOnlyList<long>)x.EnumerateArray().Select(y => y.GetInt64()).ToList()).ToList(),
            _ => throw ApiException.BadRequest("'input' must be a string, a list of strings, a list of token ids, or a list of lists of token ids.", "input"),
        };
    }
}
