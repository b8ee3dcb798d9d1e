using System.Net;
using System.Net.Sockets;

namespace Pipeline.Jobs.Tests;

/// <summary>
/// A loopback TCP port in front of a real server (PostgreSQL, Azurite) that can be down: it refuses connections until
/// <see cref="Start"/> and after <see cref="Stop"/> (which also drops the open ones), and forwards them in between.
/// </summary>
public sealed class TcpForwarder : IDisposable
{
    private readonly string _host;
    private readonly int _targetPort;
    private readonly List<TcpClient> _open = [];
    private CancellationTokenSource _stop = new();
    private TcpListener? _listener;

    public TcpForwarder(string host, int targetPort)
    {
        (_host, _targetPort) = (host, targetPort);
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        Port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
    }

    public int Port { get; }

    public void Start()
    {
        _stop = new CancellationTokenSource();
        _listener = new TcpListener(IPAddress.Loopback, Port);
        _listener.Start();
        _ = AcceptAsync(_listener);
    }

    /// <summary>The server goes away: new connections are refused and open ones are reset.</summary>
    public void Stop()
    {
        _stop.Cancel();
        _listener?.Stop();
        lock (_open)
        {
            foreach (var c in _open) c.Close();
            _open.Clear();
        }
    }

    private async Task AcceptAsync(TcpListener listener)
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient inbound;
            try
            {
                inbound = await listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            _ = ForwardAsync(inbound);
        }
    }

    private async Task ForwardAsync(TcpClient inbound)
    {
        using (inbound)
        using (var outbound = new TcpClient())
        {
            lock (_open) _open.AddRange([inbound, outbound]);
            try
            {
                await outbound.ConnectAsync(_host, _targetPort, _stop.Token);
                await Task.WhenAny(
                    inbound.GetStream().CopyToAsync(outbound.GetStream(), _stop.Token),
                    outbound.GetStream().CopyToAsync(inbound.GetStream(), _stop.Token));
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or SocketException)
            {
                // A connection ends when either side closes it or the forwarder stops.
            }
        }
    }

    public void Dispose() => Stop();
}
