using static TorchSharp.torch;

namespace DistributedInference.Models.Serving;

/// <summary>
/// The rows of a served-requests job and of its result, as a <see cref="ServingReplica"/> reads and writes them: every
/// value has one row per sequence, so the job splits and gathers like any replica job and crosses nodes as tensors.
/// Rows: <c>input_ids</c> [B, T] int64 left-padded and <c>attention_mask</c> [B, T] (when padded); per row
/// <c>max_tokens</c>, <c>top_k</c>, <c>seed</c>, <c>logprobs</c> (-1: none), <c>row_index</c> (int64 [B]),
/// <c>temperature</c>, <c>top_p</c>, <c>repetition_penalty</c> (float64 [B]), <c>stop_token_ids</c> [B, S] (-1 padded)
/// and <c>request_id</c> (strings); <c>result_shape</c> int64 [B, 2] (the job's widest budget and top-logprobs count, on
/// every row, so results of batches the job was split into have one width and concatenate). Results: <c>output_ids</c> [B, M] (-1 after the end), <c>finish_reason</c> [B]
/// (0 stop, 1 length), <c>logprobs</c> [B, M] float32 and <c>top_logprob_ids</c> / <c>top_logprobs</c> [B, M, K].
/// </summary>
public static class ServingRows
{
    public const string RequestId = "request_id";

    private const string ResultShapeKey = "result_shape";

    /// <summary>The job rows of <paramref name="requests"/> (all of one job); the caller owns the tensors.</summary>
    public static IReadOnlyDictionary<string, object> Of(IReadOnlyList<GenerationRequest> requests, long padTokenId, IReadOnlyList<long>? sequenceIndex = null)
    {
        var batch = Tokenization.TokenBatch.Pad(requests.Select(r => r.PromptTokenIds).ToList(), padTokenId, padLeft: true);
        var stopWidth = Math.Max(1, requests.Max(r => r.StopTokenIds.Count));
        var stops = new long[requests.Count * stopWidth];
        Array.Fill(stops, -1);
        for (var i = 0; i < requests.Count; i++)
        {
            for (var j = 0; j < requests[i].StopTokenIds.Count; j++)
            {
                stops[(i * stopWidth) + j] = requests[i].StopTokenIds[j];
            }
        }

        var rows = new Dictionary<string, object>
        {
            ["input_ids"] = batch.InputIds,
            ["row_index"] = tensor(sequenceIndex?.ToArray() ?? requests.Select(_ => 0L).ToArray()),
            ["max_tokens"] = tensor(requests.Select(r => (long)r.Sampling.MaxTokens).ToArray()),
            ["top_k"] = tensor(requests.Select(r => (long)r.Sampling.TopK).ToArray()),
            ["seed"] = tensor(requests.Select(r => r.Sampling.Seed).ToArray()),
            ["logprobs"] = tensor(requests.Select(r => (long)(r.Sampling.Logprobs ?? -1)).ToArray()),
            ["temperature"] = tensor(requests.Select(r => r.Sampling.Temperature).ToArray()),
            ["top_p"] = tensor(requests.Select(r => r.Sampling.TopP).ToArray()),
            ["repetition_penalty"] = tensor(requests.Select(r => r.Sampling.RepetitionPenalty).ToArray()),
            ["stop_token_ids"] = tensor(stops, [requests.Count, stopWidth]),
            [RequestId] = requests.Select(r => r.RequestId).ToArray(),
            [ResultShapeKey] = tensor(
                Enumerable.Repeat(new[] { Math.Max(1L, requests.Max(r => r.Sampling.MaxTokens)), Math.Max(1L, requests.Max(r => r.Sampling.Logprobs ?? 0)) }, requests.Count).SelectMany(x => x).ToArray(),
                [requests.Count, 2]),
        };
        if (batch.AttentionMask is not null)
        {
            rows["attention_mask"] = batch.AttentionMask;
        }

        return rows;
    }

    /// <summary>The requests in job rows (what a replica runs), and each row's request id.</summary>
    /// <exception cref="InvalidInputException">A key is missing or of the wrong kind.</exception>
    public static (IReadOnlyList<DecoderRow> Rows, IReadOnlyList<string?> RequestIds) Read(object rows)
    {
        if (rows is not IReadOnlyDictionary<string, object> named)
        {
            throw new InvalidInputException("served requests come as a dictionary of rows (ServingRows.Of)");
        }

        Tensor Get(string key) => named.TryGetValue(key, out var value) && value is Tensor t ? t : throw new InvalidInputException($"served requests lack tensor '{key}'");
        var ids = Get("input_ids").to(ScalarType.Int64).cpu();
        var count = (int)ids.shape[0];
        var width = (int)ids.shape[1];
        var allIds = ids.data<long>().ToArray();
        var mask = named.TryGetValue("attention_mask", out var m) && m is Tensor maskTensor ? maskTensor.to(ScalarType.Int64).cpu().data<long>().ToArray() : null;
        long[] Longs(string key) => Get(key).to(ScalarType.Int64).cpu().data<long>().ToArray();
        double[] Doubles(string key) => Get(key).to(ScalarType.Float64).cpu().data<double>().ToArray();
        var (maxTokens, topK, seed, logprobs, index) = (Longs("max_tokens"), Longs("top_k"), Longs("seed"), Longs("logprobs"), Longs("row_index"));
        var (temperature, topP, penalty) = (Doubles("temperature"), Doubles("top_p"), Doubles("repetition_penalty"));
        var stopTensor = Get("stop_token_ids");
        var stopWidth = (int)stopTensor.shape[1];
        var stops = stopTensor.to(ScalarType.Int64).cpu().data<long>().ToArray();
        var requestIds = named.TryGetValue(RequestId, out var r) && r is System.Collections.IList list ? list.Cast<object?>().Select(x => x as string).ToList() : Enumerable.Repeat<string?>(null, count).ToList();
        var decoded = new List<DecoderRow>(count);
        for (var i = 0; i < count; i++)
        {
            var prompt = new List<long>();
            for (var t = 0; t < width; t++)
            {
                if (mask is null || mask[(i * width) + t] != 0)
                {
                    prompt.Add(allIds[(i * width) + t]);
                }
            }

            var sampling = new SamplingParameters((int)maxTokens[i], temperature[i], (int)topK[i], topP[i], penalty[i], seed[i], logprobs[i] < 0 ? null : (int)logprobs[i]);
            var stop = stops.Skip(i * stopWidth).Take(stopWidth).Where(id => id >= 0).ToList();
            decoded.Add(new DecoderRow(prompt, sampling, stop, index[i]));
        }

        return (decoded, requestIds);
    }

    /// <summary>The width and top-logprobs count of a job's results (<c>result_shape</c>), when the rows carry it.</summary>
    public static (int Width, int Top)? ResultShape(object rows) =>
        rows is IReadOnlyDictionary<string, object> named && named.TryGetValue(ResultShapeKey, out var value) && value is Tensor { shape: [> 0, 2] } shape
            ? ((int)shape[0, 0].ToInt64(), (int)shape[0, 1].ToInt64())
            : null;

    /// <summary>The result rows of decoded rows; the caller owns the tensors.</summary>
    /// <param name="shape">The job's result width and top-logprobs count (<see cref="ResultShape"/>); null: this batch's own.</param>
    public static IReadOnlyDictionary<string, object> Results(IReadOnlyList<DecodedRow> decoded, IReadOnlyList<DecoderRow> rows, (int Width, int Top)? shape = null)
    {
        var width = Math.Max(shape?.Width ?? 1, rows.Max(r => r.Sampling.MaxTokens));
        var top = Math.Max(shape?.Top ?? 1, rows.Max(r => r.Sampling.Logprobs ?? 0));
        var count = decoded.Count;
        var ids = new long[count * width];
        var logprobs = new float[count * width];
        var topIds = new long[count * width * top];
        var topLogprobs = new float[count * width * top];
        Array.Fill(ids, -1);
        Array.Fill(logprobs, float.NaN);
        Array.Fill(topIds, -1);
        Array.Fill(topLogprobs, float.NaN);
        for (var r = 0; r < count; r++)
        {
            for (var t = 0; t < decoded[r].Tokens.Count; t++)
            {
                var token = decoded[r].Tokens[t];
                ids[(r * width) + t] = token.TokenId;
                logprobs[(r * width) + t] = token.Logprob is { } lp ? (float)lp : float.NaN;
                for (var k = 0; k < (token.TopLogprobs?.Count ?? 0); k++)
                {
                    topIds[(((r * width) + t) * top) + k] = token.TopLogprobs![k].TokenId;
                    topLogprobs[(((r * width) + t) * top) + k] = (float)token.TopLogprobs[k].Logprob;
                }
            }
        }

        return new Dictionary<string, object>
        {
            ["output_ids"] = tensor(ids, [count, width]),
            ["finish_reason"] = tensor(decoded.Select(d => d.Finish == FinishReason.Stop ? 0L : 1L).ToArray()),
            ["logprobs"] = tensor(logprobs, [count, width]),
            ["top_logprob_ids"] = tensor(topIds, [count, width, top]),
            ["top_logprobs"] = tensor(topLogprobs, [count, width, top]),
        };
    }

    /// <summary>Reads one row of a result back: its tokens (with log-probabilities when the request asked) and finish reason.</summary>
    public static (IReadOnlyList<GeneratedToken> Tokens, FinishReason Finish) ReadResult(object results, int row, int? logprobs)
    {
        if (results is not IReadOnlyDictionary<string, object> named)
        {
            throw new InvalidInputException("served results come as a dictionary of rows");
        }

        var ids = ((Tensor)named["output_ids"])[row].cpu().data<long>().ToArray();
        var lps = ((Tensor)named["logprobs"])[row].cpu().data<float>().ToArray();
        var topIds = ((Tensor)named["top_logprob_ids"])[row].cpu();
        var topLps = ((Tensor)named["top_logprobs"])[row].cpu();
        var top = (int)topIds.shape[1];
        var flatIds = topIds.data<long>().ToArray();
        var flatLps = topLps.data<float>().ToArray();
        var tokens = new List<GeneratedToken>();
        for (var t = 0; t < ids.Length && ids[t] >= 0; t++)
        {
            if (logprobs is { } k)
            {
                var alternatives = Enumerable.Range(0, Math.Min(k, top)).Where(n => flatIds[(t * top) + n] >= 0)
                    .Select(n => new TokenLogprob(flatIds[(t * top) + n], flatLps[(t * top) + n])).ToList();
                tokens.Add(new GeneratedToken(ids[t], lps[t], alternatives));
            }
            else
            {
                tokens.Add(new GeneratedToken(ids[t]));
            }
        }

        var finish = ((Tensor)named["finish_reason"])[row].ToInt64() == 0 ? FinishReason.Stop : FinishReason.Length;
        return (tokens, finish);
    }
}
