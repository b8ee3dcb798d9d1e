using System.Net;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Pipeline.Jobs.Artifacts;
using Pipeline.Stages.Artifacts;

namespace Pipeline.Jobs.Tests.Artifacts;

/// <summary>Against Azurite (started by ./scripts/test.sh), one fresh container per test.</summary>
[Collection(ArtifactStoreCollection.Name)]
public sealed class AzureBlobArtifactStoreTests : ArtifactStoreContractTests
{
    private readonly string _containerName = "artifacts-" + Guid.NewGuid().ToString("N");

    private AzureBlobArtifactStore BlobStore => (AzureBlobArtifactStore)Store;

    protected override async Task<IArtifactStore> CreateStoreAsync()
    {
        var store = new AzureBlobArtifactStore(TestServices.Blobs, _containerName);
        await store.EnsureCreatedAsync();
        return store;
    }

    protected override async Task CorruptBehindTheStoreAsync(string path, byte[] otherBytes)
    {
        // Another writer replaces the body but keeps the metadata (and so the old sha256).
        var blob = BlobStore.Container.GetBlobClient(path);
        BlobProperties old = await blob.GetPropertiesAsync();
        await blob.UploadAsync(new BinaryData(otherBytes), new BlobUploadOptions { Metadata = old.Metadata });
    }

    protected override Task DeleteStoreAsync() => BlobStore.Container.DeleteIfExistsAsync();

    [Fact]
    public void The_kind_is_azure_blob() => Assert.Equal("azure-blob", Store.Kind);

    [Fact]
    public async Task The_recorded_sha256_and_media_type_are_on_the_blob_itself()
    {
        var put = await Store.PutAsync("runs/1/report-0123abcd/report.html", new MemoryStream("<p>r</p>"u8.ToArray()), "text/html");

        BlobProperties p = await BlobStore.Container.GetBlobClient("runs/1/report-0123abcd/report.html").GetPropertiesAsync();
        Assert.Equal(put.Sha256, p.Metadata[AzureBlobArtifactStore.Sha256MetadataKey]);
        Assert.Equal("text/html", p.ContentType);
    }

    [Fact]
    public async Task The_sas_url_downloads_the_bytes_with_a_plain_http_client_and_allows_nothing_else()
    {
        var path = "runs/1/train-0123abcd/metrics.json";
        var bytes = GeneratedStream.Bytes(3 * 1024 * 1024 + 7, seed: 11);
        await Store.PutAsync(path, new MemoryStream(bytes), "application/json");

        var uri = Store.GetDownloadUri(path, TimeSpan.FromMinutes(5));

        Assert.NotNull(uri);
        using var http = new HttpClient();
        Assert.Equal(bytes, await http.GetByteArrayAsync(uri));
        using var overwrite = new HttpRequestMessage(HttpMethod.Put, uri) { Content = new ByteArrayContent([1, 2, 3]) };
        overwrite.Headers.Add("x-ms-blob-type", "BlockBlob");
        using var refused = await http.SendAsync(overwrite);
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Equal(bytes, await http.GetByteArrayAsync(uri));
        using var unsigned = await http.GetAsync(new Uri(uri.GetLeftPart(UriPartial.Path)));
        Assert.False(unsigned.IsSuccessStatusCode);
    }

    [Fact]
    public async Task A_blob_written_without_a_recorded_sha256_is_not_an_artifact()
    {
        await BlobStore.Container.GetBlobClient("runs/1/foreign/x.bin").UploadAsync(new BinaryData([1, 2, 3]));

        Assert.Null(await Store.GetInfoAsync("runs/1/foreign/x.bin"));
        Assert.Empty(await ListAsync("runs/1/"));
        await Assert.ThrowsAsync<ArtifactNotFoundException>(() => Store.OpenReadAsync("runs/1/foreign/x.bin"));
    }

    [Fact]
    public async Task The_store_creates_its_container_on_first_put_and_reads_nothing_before()
    {
        var store = new AzureBlobArtifactStore(TestServices.Blobs, "lazy-" + Guid.NewGuid().ToString("N"));
        try
        {
            Assert.Null(await store.GetInfoAsync("runs/1/a/b.txt"));
            Assert.False(await store.DeleteAsync("runs/1/a/b.txt"));
            await foreach (var _ in store.ListAsync("runs/")) Assert.Fail("listed an artifact of a container that does not exist");
            await Assert.ThrowsAsync<InvalidOperationException>(() => store.PingAsync());

            await store.PutAsync("runs/1/a/b.txt", new MemoryStream("b"u8.ToArray()), "text/plain");

            await store.PingAsync();
            Assert.NotNull(await store.GetInfoAsync("runs/1/a/b.txt"));
        }
        finally
        {
            await store.Container.DeleteIfExistsAsync();
        }
    }

    [Fact]
    public async Task Ping_fails_when_the_service_does_not_answer()
    {
        // A port nothing listens on (9, "discard", is closed here); no retries, so the test does not wait them out.
        var options = AzureBlobArtifactStore.CreateClientOptions();
        options.Retry.MaxRetries = 0;
        var unreachable = TestServices.Blobs.Replace(new Uri(BlobEndpoint()).Authority, "127.0.0.1:9", StringComparison.Ordinal);
        var store = new AzureBlobArtifactStore(new BlobServiceClient(unreachable, options).GetBlobContainerClient("absent"));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        await Assert.ThrowsAnyAsync<Exception>(() => store.PingAsync(cts.Token));
    }

    private static string BlobEndpoint() =>
        TestServices.Blobs.Split(';').Single(p => p.StartsWith("BlobEndpoint=", StringComparison.Ordinal))["BlobEndpoint=".Length..];
}
