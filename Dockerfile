FROM python:3.11-slim
WORKDIR /app
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# Editable, so that the migrations/ folder beside the package is found at run time.
RUN pip install --no-cache-dir --no-deps -e .
ENV CALLTRAIL_HOST=0.0.0.0
EXPOSE 8000
CMD ["calltrail", "serve"]
