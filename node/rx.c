/* The daemon's receive pipeline: one worker thread, two FIFO lists under one
 * mutex (see rx.h). */
#define _POSIX_C_SOURCE 200809L
#include "rx.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include <sodium.h>

typedef struct job_list {
  vn_rx_job *head, *tail;
} job_list;

struct vn_rx {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t work; /* todo has a job, or stop */
  pthread_cond_t done; /* finished has a job */
  job_list todo, finished;
  uint32_t inflight; /* submitted, not yet taken back */
  bool stop;
  int pipe_r, pipe_w; /* one byte per finished job (a full pipe still polls readable) */
};

static void list_push(job_list *l, vn_rx_job *j) {
  j->next = NULL;
  if (l->tail != NULL) l->tail->next = j;
  else l->head = j;
  l->tail = j;
}

static vn_rx_job *list_pop(job_list *l) {
  vn_rx_job *j = l->head;
  if (j != NULL) {
    l->head = j->next;
    if (l->head == NULL) l->tail = NULL;
    j->next = NULL;
  }
  return j;
}

static void *worker_main(void *arg) {
  vn_rx *rx = arg;
  pthread_mutex_lock(&rx->mu);
  while (!rx->stop) { /* each round takes one job; stop ends it */
    vn_rx_job *j = list_pop(&rx->todo);
    if (j == NULL) {
      pthread_cond_wait(&rx->work, &rx->mu);
      continue;
    }
    pthread_mutex_unlock(&rx->mu);
    /* Pure: touches only the job. On failure (memory) prep stays NULL and
     * the daemon hands the frame to vs_node_on_frame. */
    if (vs_rx_prepare(j->have_key ? &j->key : NULL, j->pkt->data, j->pkt->dataLength, &j->prep) != VS_OK)
      j->prep = NULL;
    sodium_memzero(&j->key, sizeof j->key);
    j->have_key = false;
    pthread_mutex_lock(&rx->mu);
    list_push(&rx->finished, j);
    pthread_cond_signal(&rx->done);
    ssize_t w = write(rx->pipe_w, "j", 1);
    (void)w; /* non-blocking: a full pipe is readable already */
  }
  pthread_mutex_unlock(&rx->mu);
  return NULL;
}

vn_rx *vn_rx_start(void) {
  vn_rx *rx = calloc(1, sizeof *rx);
  if (rx == NULL) return NULL;
  int fds[2];
  if (pipe(fds) != 0) {
    free(rx);
    return NULL;
  }
  rx->pipe_r = fds[0];
  rx->pipe_w = fds[1];
  bool ok = fcntl(fds[0], F_SETFL, O_NONBLOCK) == 0 && fcntl(fds[1], F_SETFL, O_NONBLOCK) == 0 &&
            fcntl(fds[0], F_SETFD, FD_CLOEXEC) == 0 && fcntl(fds[1], F_SETFD, FD_CLOEXEC) == 0;
  bool mu = ok && pthread_mutex_init(&rx->mu, NULL) == 0;
  bool cw = mu && pthread_cond_init(&rx->work, NULL) == 0;
  bool cd = cw && pthread_cond_init(&rx->done, NULL) == 0;
  if (cd && pthread_create(&rx->thread, NULL, worker_main, rx) == 0) return rx;
  if (cd) pthread_cond_destroy(&rx->done);
  if (cw) pthread_cond_destroy(&rx->work);
  if (mu) pthread_mutex_destroy(&rx->mu);
  close(fds[0]);
  close(fds[1]);
  free(rx);
  return NULL;
}

int vn_rx_fd(const vn_rx *rx) { return rx->pipe_r; }

uint32_t vn_rx_inflight(const vn_rx *rx) { return rx->inflight; } /* the daemon's thread alone changes it */

bool vn_rx_submit(vn_rx *rx, vn_rx_job *job) {
  if (rx->inflight >= VN_RX_JOBS_MAX) return false;
  pthread_mutex_lock(&rx->mu);
  list_push(&rx->todo, job);
  rx->inflight++;
  pthread_cond_signal(&rx->work);
  pthread_mutex_unlock(&rx->mu);
  return true;
}

vn_rx_job *vn_rx_take(vn_rx *rx, bool wait) {
  pthread_mutex_lock(&rx->mu);
  vn_rx_job *j = list_pop(&rx->finished);
  /* Bounded: the worker finishes every submitted job in order. */
  while (j == NULL && wait && rx->inflight > 0) {
    pthread_cond_wait(&rx->done, &rx->mu);
    j = list_pop(&rx->finished);
  }
  if (j != NULL) rx->inflight--;
  pthread_mutex_unlock(&rx->mu);
  if (j != NULL) {
    char b;
    ssize_t r = read(rx->pipe_r, &b, 1); /* one byte per job; an empty pipe is fine (EAGAIN) */
    (void)r;
  }
  return j;
}

void vn_rx_job_free(vn_rx_job *job) {
  if (job == NULL) return;
  vs_rx_prep_free(job->prep);
  if (job->pkt != NULL) enet_packet_destroy(job->pkt);
  sodium_memzero(&job->key, sizeof job->key);
  free(job);
}

void vn_rx_stop(vn_rx *rx) {
  if (rx == NULL) return;
  pthread_mutex_lock(&rx->mu);
  rx->stop = true;
  pthread_cond_signal(&rx->work);
  pthread_mutex_unlock(&rx->mu);
  pthread_join(rx->thread, NULL);
  for (vn_rx_job *j = list_pop(&rx->todo); j != NULL; j = list_pop(&rx->todo)) vn_rx_job_free(j);
  for (vn_rx_job *j = list_pop(&rx->finished); j != NULL; j = list_pop(&rx->finished)) vn_rx_job_free(j);
  pthread_cond_destroy(&rx->done);
  pthread_cond_destroy(&rx->work);
  pthread_mutex_destroy(&rx->mu);
  close(rx->pipe_r);
  close(rx->pipe_w);
  free(rx);
}
