using System.Collections.Concurrent;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using Pipeline.Jobs.RunStore;
using Pipeline.Stages.Artifacts;

namespace Pipeline.Jobs.Engine;

/// <summary>
/// One stage attempt's log, handed to the handler as its logger. Every line still goes to the process's logger (Serilog,
/// with the RunId/StageId scope); it is also written, once a second in one batch, to the run store — a bounded tail of
/// <see cref="TailLines"/> lines per attempt that the dashboard shows live and after the worker is gone — and to a local
/// file that becomes the attempt's log artifact (<see cref="ArtifactPaths.LogFile"/>) when the attempt ends. A store
/// outage loses log lines, never the stage: writing them is best effort.
/// </summary>
public sealed class StageLog : ILogger, IAsyncDisposable
{
    /// <summary>Lines kept in the run store per attempt; older ones are dropped (the log artifact has them all).</summary>
    public const int TailLines = 2000;

    public static readonly TimeSpan FlushInterval = TimeSpan.FromSeconds(1);

    /// <summary>The longest an attempt's end waits for its log to upload.</summary>
    public static readonly TimeSpan UploadTimeout = TimeSpan.FromSeconds(5);

    private const int MaxMessageChars = 4000;
    private const int MaxBuffered = 20_000;

    private readonly IDbContextFactory<RunStoreContext> _dbs;
    private readonly ILogger _inner;
    private readonly long _runId;
    private readonly long _stageId;
    private readonly string _stageName;
    private readonly int _attempt;
    private readonly string _file;
    private readonly StreamWriter _writer;
    private readonly ConcurrentQueue<StageLogLine> _pending = new();
    private readonly SemaphoreSlim _flushing = new(1, 1);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private int _stored;
    private bool _warned;

    public StageLog(IDbContextFactory<RunStoreContext> dbs, ILogger inner, long runId, long stageId, string stageName, int attempt, string scratchFolder)
    {
        (_dbs, _inner, _runId, _stageId, _stageName, _attempt) = (dbs, inner, runId, stageId, stageName, attempt);
        _file = Path.Combine(scratchFolder, $"stage-{stageId}.attempt-{attempt}.log");
        _writer = new StreamWriter(_file, append: false) { AutoFlush = false };
        _loop = FlushLoopAsync();
    }

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => _inner.BeginScope(state);

    public bool IsEnabled(LogLevel logLevel) => _inner.IsEnabled(logLevel);

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        _inner.Log(logLevel, eventId, state, exception, formatter);
        if (!IsEnabled(logLevel) || _pending.Count >= MaxBuffered) return;
        var message = formatter(state, exception);
        if (exception is not null) message += Environment.NewLine + exception;
        if (message.Length > MaxMessageChars) message = message[..MaxMessageChars] + " …";
        _pending.Enqueue(new StageLogLine
        {
            RunId = _runId,
            StageId = _stageId,
            Attempt = _attempt,
            At = DateTime.UtcNow,
            Level = logLevel.ToString(),
            Message = message,
        });
    }

    private async Task FlushLoopAsync()
    {
        using var timer = new PeriodicTimer(FlushInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token)) await FlushAsync(CancellationToken.None);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task FlushAsync(CancellationToken ct)
    {
        await _flushing.WaitAsync(ct);
        try
        {
            var batch = new List<StageLogLine>();
            while (_pending.TryDequeue(out var line)) batch.Add(line);
            if (batch.Count == 0) return;
            foreach (var l in batch) await _writer.WriteLineAsync($"{l.At:yyyy-MM-ddTHH:mm:ss.fffZ} {l.Level,-11} {l.Message}");
            await _writer.FlushAsync(ct);
            await using var db = await _dbs.CreateDbContextAsync(ct);
            db.StageLogs.AddRange(batch);
            await db.SaveChangesAsync(ct);
            _stored += batch.Count;
            // Trim in steps rather than per batch: one delete per few hundred lines keeps the tail cheap to hold.
            if (_stored > TailLines + 500)
            {
                var cutoff = await db.StageLogs.Where(l => l.StageId == _stageId && l.Attempt == _attempt)
                    .OrderByDescending(l => l.Id).Skip(TailLines).Select(l => (long?)l.Id).FirstOrDefaultAsync(ct);
                if (cutoff is { } id) await db.StageLogs.Where(l => l.StageId == _stageId && l.Attempt == _attempt && l.Id <= id).ExecuteDeleteAsync(ct);
                _stored = TailLines;
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            if (!_warned) _inner.LogWarning("Stage {StageId}: its log lines could not be stored ({Error}); the stage goes on", _stageId, StoreOutage.Describe(e));
            _warned = true;
        }
        finally
        {
            _flushing.Release();
        }
    }

    /// <summary>
    /// Stops the timer, stores what is left, and uploads the attempt's whole log to the artifact store as an artifact of
    /// its stage. Returns what was uploaded, or null when it could not be (the stored tail remains).
    /// </summary>
    public async Task<ArtifactInfo?> CompleteAsync(IArtifactStore store, CancellationToken ct = default)
    {
        await _stop.CancelAsync();
        await _loop;
        await FlushAsync(CancellationToken.None);
        await _writer.DisposeAsync();
        try
        {
            await using var content = File.OpenRead(_file);
            var info = await store.PutAsync(ArtifactPaths.LogFile(_runId, _stageName, _attempt), content, "text/plain", ct);
            await using var db = await _dbs.CreateDbContextAsync(ct);
            db.Artifacts.Add(ArtifactRecord.Of(_runId, _stageId, info, DateTime.UtcNow));
            await db.SaveChangesAsync(ct);
            return info;
        }
        catch (Exception e)
        {
            _inner.LogWarning("Stage {StageId}: its log could not be uploaded ({Error}); its last {Lines} lines are in the run store", _stageId, StoreOutage.Describe(e), TailLines);
            return null;
        }
        finally
        {
            File.Delete(_file);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested)
        {
            await _stop.CancelAsync();
            await _loop;
            await FlushAsync(CancellationToken.None);
            await _writer.DisposeAsync();
            File.Delete(_file);
        }
        _stop.Dispose();
    }
}
